"""Tracking scores of a synthetic world ingested with one ``IngestConfig`` setting changed.

Usage::

    python benchmarks/tracking_variants.py WORLD [KEY=VALUE ...]

Each KEY=VALUE is an ``indexer.ingest.IngestConfig`` field, VALUE read as JSON (so
``max_cosine_distance=0.3``, ``ground_cue=true``, ``detector="oracle"``,
``detector_options={"score_threshold":0.3}``); no pairs = the defaults. The world is ingested
into a fresh SQLite database in a temporary folder (one worker per core) and scored like
``reidtrace evaluate-tracking``; one JSON line is printed: the settings, MOTA, IDF1, ID switches
and (MOTA, IDF1) per camera. This is how the session-4 rows of docs/tracking.md were made.
Written by hand: it is a loop over the project's own ingest and evaluate functions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path

from indexer.ingest import IngestConfig, ingest
from indexer.ingest.evaluate import evaluate_tracking
from indexer.settings import IndexSettings
from indexer.store.db import make_engine
from indexer.store.migrate import upgrade
from reid.track import TrackerConfig


def parse_settings(pairs: list[str]) -> dict:
    fields = ({f.name for f in dataclasses.fields(IngestConfig)} - {"tracker"}) | (
        TrackerConfig.names()
    )
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"bad setting {pair!r}: KEY=VALUE, KEY one of {sorted(fields)}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            raise SystemExit(f"bad value in {pair!r}: JSON, strings in quotes") from None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("world", type=Path, help="a folder written by `reidtrace synth`")
    ap.add_argument("settings", nargs="*", help="IngestConfig fields as KEY=VALUE (JSON values)")
    args = ap.parse_args()
    if not (args.world / "cameras.json").is_file():
        raise SystemExit(f"{args.world} is not a synthetic world (no cameras.json)")
    kw = parse_settings(args.settings)
    with tempfile.TemporaryDirectory(prefix="reidtrace-variant-") as tmp:
        db = f"sqlite:///{Path(tmp) / 'variant.db'}"
        upgrade(make_engine(db))
        ingest(
            [args.world],
            db_url=db,
            index_path=Path(tmp) / "variant.faiss",
            index_settings=IndexSettings(),
            cfg=IngestConfig.from_settings(**kw),
            workers=os.cpu_count() or 1,
        )
        r = evaluate_tracking(args.world, db_url=db)
    per_camera = {c: (round(s["mota"], 3), round(s["idf1"], 3)) for c, s in r["per_camera"].items()}
    print(
        json.dumps(
            {
                "settings": kw,
                "mota": r["mota"],
                "idf1": r["idf1"],
                "id_switches": r["id_switches"],
                "per_camera": per_camera,
            }
        )
    )


if __name__ == "__main__":
    main()
