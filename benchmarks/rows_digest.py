"""Ingest footage into a fresh SQLite store with the default settings and print a digest of
every stored row, per table: the byte-level check that a refactor left ingestion unchanged.

    python benchmarks/rows_digest.py VIDEO_OR_WORLD... --out DIR [--json]

Run it at two commits (e.g. ``git worktree add /tmp/base REV`` and ``PYTHONPATH=/tmp/base``) on
the same footage and compare the printed digests. Rows are read with plain SQL (no project
code), ordered by their natural keys; ``sighting.model`` is reported apart because it names the
model, not the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from pathlib import Path

from indexer.ingest import IngestConfig, ingest
from indexer.settings import IndexSettings

QUERIES = {
    "detection": "SELECT v.content_hash, t.track_no, d.frame_idx, d.x1, d.y1, d.x2, d.y2, "
    "d.confidence, d.foot_x, d.foot_y FROM detection d JOIN track t ON t.id = d.track_id "
    "JOIN video v ON v.id = d.video_id ORDER BY v.content_hash, t.track_no, d.frame_idx",
    "track": "SELECT v.content_hash, t.* FROM track t JOIN video v ON v.id = t.video_id "
    "ORDER BY v.content_hash, t.track_no",
    "sighting": "SELECT v.content_hash, t.track_no, d.frame_idx, s.quality, s.vector, "
    "s.thumbnail FROM sighting s JOIN detection d ON d.id = s.detection_id "
    "JOIN track t ON t.id = s.track_id JOIN video v ON v.id = d.video_id "
    "ORDER BY v.content_hash, t.track_no, d.frame_idx",
    "sighting_ids": "SELECT s.id, d.frame_idx FROM sighting s JOIN detection d "
    "ON d.id = s.detection_id ORDER BY s.id",
}


def digest(db: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    with sqlite3.connect(db) as con:
        for name, sql in QUERIES.items():
            cur = con.execute(sql)
            cols = [c[0] for c in cur.description]
            keep = [i for i, c in enumerate(cols) if c not in ("id", "created_at", "updated_at")]
            h = hashlib.sha256()
            n = 0
            for row in cur:
                h.update(repr([row[i] for i in keep]).encode())
                n += 1
            out[name] = {"rows": n, "sha256": h.hexdigest()[:16]}
        models = con.execute("SELECT DISTINCT model FROM sighting")
        out["models"] = {"names": [r[0] for r in models]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--out", required=True, help="an empty folder for the store")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=False)
    report = ingest(
        list(args.paths),
        db_url=f"sqlite:///{out / 'db.sqlite'}",
        index_path=out / "index.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(),
        workers=1,
    )
    assert report.ok, report.as_dict()
    print(json.dumps(digest(out / "db.sqlite"), indent=1))


if __name__ == "__main__":
    main()
