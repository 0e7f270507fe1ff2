"""Tracking scores of a real labelled video from cached detections: the tracker alone, in seconds.

Usage::

    python benchmarks/real_replay.py VIDEO GT SCALE FIRST LAST [MIN_BOTTOM] [KEY=VALUE ...]
        [--out TRACKS.txt] [--cache DIR]

The real-footage twin of ``tracker_replay.py`` (which needs a synthetic world): the same
detector settings, histogram cue and ``DeepSortTracker`` as ingestion on every frame of VIDEO,
tracks shorter than ``min_track_frames`` dropped as ingestion drops them, written in
MOTChallenge format (``--out``) and scored with ``../shared/tools/motscore.py`` (motmetrics,
IoU 0.5; GT, SCALE, FIRST, LAST and MIN_BOTTOM as that tool takes them). It also prints the
rows per track of the ten longest tracks that barely move (a box that stays put over most of
its life is clutter: the PETS traffic cones). KEY=VALUE are ``IngestConfig`` fields with JSON
values. Detections are cached in ``--cache`` (default ``/tmp/reidtrace-detections``).
Written by hand: a loop over the project's own pipeline parts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tracker_replay import detections, replay
from tracking_variants import parse_settings

from indexer.ingest import IngestConfig
from indexer.ingest.sources import Source
from indexer.ingest.stages import Stages
from reid.data.mot import write_mot
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.video import probe

MOTSCORE = Path(__file__).resolve().parents[1] / ".." / "shared" / "tools" / "motscore.py"


def static_tracks(hyp: Detections, top: int = 10) -> list[tuple[int, int, list[float]]]:
    """(track, rows, mean box) of the longest tracks whose box centre stays within half a box
    height of its mean over the whole track."""
    out = []
    assert hyp.track_id is not None
    for tid in np.unique(hyp.track_id):
        box = hyp.xyxy[hyp.track_id == tid]
        centre = (box[:, :2] + box[:, 2:]) / 2
        height = float(np.median(box[:, 3] - box[:, 1]))
        if np.abs(centre - centre.mean(0)).max() <= 0.5 * height:
            out.append((int(tid), len(box), [round(float(v)) for v in box.mean(0)]))
    return sorted(out, key=lambda r: -r[1])[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("score", nargs="+", help="GT SCALE FIRST LAST [MIN_BOTTOM] for motscore.py")
    ap.add_argument("--out", type=Path, default=Path("/tmp/reidtrace-replay.txt"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/reidtrace-detections"))
    args = ap.parse_args()
    score = [a for a in args.score if "=" not in a]
    kw = parse_settings([a for a in args.score if "=" in a])
    try:
        cfg = IngestConfig.from_settings(**kw).validate()
    except ReidTraceError as err:
        raise SystemExit(str(err)) from None
    source = Source(args.video, args.video.stem, None)
    parts = Stages(cfg, source)
    info = probe(args.video)
    dets = detections(cfg, parts, args.video, args.cache)
    hyp = replay(parts, source, info, dets)
    parts.close()
    assert hyp.track_id is not None
    ids, counts = np.unique(hyp.track_id, return_counts=True)
    hyp = hyp[np.isin(hyp.track_id, ids[counts >= cfg.min_track_frames])]
    write_mot(args.out, hyp)
    result = subprocess.run(
        [sys.executable, str(MOTSCORE), score[0], str(args.out), *score[1:]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(
        json.dumps(
            {"settings": kw, "score": result, "rows": len(hyp), "static": static_tracks(hyp)}
        )
    )


if __name__ == "__main__":
    main()
