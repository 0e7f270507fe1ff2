"""Ingestion speed of one video under several ``IngestConfig`` settings, runs interleaved.

Usage::

    python benchmarks/ingest_variants.py VIDEO [--reps 3] [--variant 'KEY=VALUE ...'] ...

Each ``--variant`` is a space-separated list of ``IngestConfig`` fields with JSON values (as in
``tracking_variants.py``; an empty string is the defaults). The video is ingested ``--reps``
times per variant, the variants taking turns (A B A B ...), each run into a fresh SQLite
database, so that a machine whose speed drifts (this project's shared 2-core boxes do, by 25%
within minutes) drifts over every variant alike. Prints one JSON line per variant: frames/s of
the pipeline's own time (as ``reidtrace bench ingest``) per run, and the median.
Written by hand: a loop over the project's own ``ingest_video``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tracking_variants import parse_settings

from indexer.ingest import IngestConfig
from indexer.ingest.pipeline import ingest_video
from indexer.ingest.sources import Source
from indexer.store.db import make_engine
from indexer.store.migrate import upgrade


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variant", action="append", default=None, help="'KEY=VALUE ...' or ''")
    args = ap.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video} is not a file: pass a video")
    variants = [parse_settings(v.split()) for v in (args.variant or [""])]
    fps: list[list[float]] = [[] for _ in variants]
    with tempfile.TemporaryDirectory(prefix="reidtrace-speed-") as tmp:
        for rep in range(args.reps):
            for i, kw in enumerate(variants):
                db = f"sqlite:///{Path(tmp) / f'{rep}_{i}.db'}"
                upgrade(make_engine(db))
                cfg = IngestConfig.from_settings(**kw)
                r = ingest_video(db, Source(args.video, "speed", None), cfg)
                if r.status != "done":
                    raise SystemExit(f"{args.video}: {r.error}")
                fps[i].append(round(r.frames / max(sum(r.stages.values()), 1e-9), 1))
    for kw, runs in zip(variants, fps, strict=True):
        print(json.dumps({"settings": kw, "fps": runs, "median_fps": statistics.median(runs)}))


if __name__ == "__main__":
    main()
