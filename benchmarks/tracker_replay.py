"""Tracking scores of a synthetic world from cached detections: the tracker alone, in seconds.

Usage::

    python benchmarks/tracker_replay.py WORLD [KEY=VALUE ...] [--cache DIR]

Runs what ingestion runs between the detector and the store (the same detector settings, the
histogram cue, ``DeepSortTracker`` built from ``IngestConfig`` exactly as the pipeline builds it)
on every frame of each camera, and scores the tracked boxes like ``reidtrace evaluate-tracking``.
Detections are computed once per camera and detector setting and kept in ``--cache`` (default:
``WORLD/.detections``), so a tracker setting costs 15-25 s on the demo world instead of a full
ingest. KEY=VALUE are ``IngestConfig`` fields with JSON values, as in ``tracking_variants.py``;
the histogram cue only (``appearance="reid"`` needs the embedder: use ``tracking_variants.py``).
With the defaults it prints the same MOTA, IDF1 and switches as ``reidtrace ingest`` +
``evaluate-tracking`` (demo world, seed 7: 0.5462 / 0.6121 / 99 in session 5).
Written by hand: a loop over the project's own pipeline parts and scorer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tracking_variants import parse_settings

from indexer.ingest import IngestConfig
from indexer.ingest.evaluate import pool_scores
from indexer.ingest.sources import Source, discover_sources
from indexer.ingest.stages import Stages
from reid.data.mot import read_mot
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.evaluate.tracking import score_tracking
from reid.track import histogram_features
from reid.video import VideoInfo, content_hash, probe, read_frames


def detections(cfg: IngestConfig, parts: Stages, video: Path, cache: Path) -> dict:
    """Every frame's detections for ``video``, from ``cache`` when computed before (keyed by the
    video's content hash and the detector settings)."""
    what = [content_hash(video), cfg.detector, cfg.detector_options, cfg.low_score]
    key = hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    path = cache / f"{video.parent.name}_{key}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    out = {k: parts.detector.detect(f, k) for k, f in read_frames(probe(video))}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    return out


def replay(parts: Stages, source: Source, info: VideoInfo, dets: dict) -> Detections:
    """Every tracked box of one video: the histogram cue and a fresh tracker on ``dets``."""
    tracker = parts.new_tracker(source, info)
    rows = []
    for k, frame in read_frames(info):
        d = dets[k]
        d.embedding = histogram_features(frame, d)
        tracked = tracker.update(d)
        if len(tracked):
            rows.append(tracked)
    return Detections.merge(rows) if rows else Detections.empty()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("world", type=Path, help="a folder written by `reidtrace synth`")
    ap.add_argument("settings", nargs="*", help="IngestConfig fields as KEY=VALUE (JSON values)")
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    if not (args.world / "cameras.json").is_file():
        raise SystemExit(f"{args.world} is not a synthetic world (no cameras.json)")
    kw = parse_settings(args.settings)
    try:
        cfg = IngestConfig.from_settings(**kw).validate()
    except ReidTraceError as err:
        raise SystemExit(str(err)) from None
    if cfg.appearance != "histogram" or cfg.detect_stride != 1:
        raise SystemExit(
            "tracker_replay runs the histogram cue on every frame; use tracking_variants.py"
        )
    scores: dict[str, dict] = {}
    hyp_boxes: dict[str, int] = {}
    for source in discover_sources([args.world]):
        if source.gt_path is None:
            continue
        parts = Stages(cfg, source)
        info = probe(source.path)
        dets = detections(cfg, parts, Path(source.path), args.cache or args.world / ".detections")
        hyp = replay(parts, source, info, dets)
        parts.close()
        scores[source.camera] = score_tracking(read_mot(source.gt_path), hyp)
        hyp_boxes[source.camera] = len(hyp)
    per_camera = {
        c: (round(s["mota"], 3), round(s["idf1"], 3), s["id_switches"]) for c, s in scores.items()
    }
    print(json.dumps({"settings": kw, **pool_scores(scores, hyp_boxes), "per_camera": per_camera}))


if __name__ == "__main__":
    main()
