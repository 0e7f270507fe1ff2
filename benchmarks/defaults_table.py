"""Every tracking default against its alternatives, on real and synthetic footage (issue 21.5).

Usage::

    python benchmarks/defaults_table.py CACHE [--shared DIR] [--yolox FILE] [--only NAME ...]

The sequences and worlds of ``reidtrace bench tracking`` (PETS09-S2L1 frames 1-397 in its
annotated area, TUD-Stadtmitte, synthetic worlds seeds 7 and 11), for both detectors: the
bundled NanoDet (``auto`` with no model installed) and YOLOX-Nano (``auto`` with ``--yolox``
installed into ``CACHE/models`` by ``reid.detect.catalog.install_model``, input size per camera
as ingestion picks it). Detection is the slow part, so each video is detected once per detector
down to the lowest ``low_score`` tried, with each box's colour histogram, and kept in ``CACHE``;
every setting then replays only the tracker on those boxes (boxes under a setting's
``low_score`` dropped: the detector's NMS keeps the same boxes above any bar). Scoring is the
bench's: truth and tracks inside the scoring zones, ``score_sequence``, pooled per row.
With ``--reid`` each box's ReID embedding (the bundled model, as ``appearance="reid"`` runs
it at ingestion) is cached too and the setting "appearance reid" is measured.
Prints a markdown table (MOTA / IDF1 per sequence, pooled real and pooled synthetic) and writes
``CACHE/defaults_table.json``. The caches are keyed by detector and video name: delete ``CACHE``
after changing a detector.
Written by hand: a loop over the project's own tracker and scorer.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from indexer.ingest import IngestConfig
from indexer.ingest.bench_tracking import (
    PETS_FRAMES,
    PETS_SEQ,
    PETS_VIDEO,
    PETS_ZONES,
    SHARED_DATA,
    TUD_SEQ,
    WORLDS,
)
from indexer.ingest.evaluate import pool_sequences, read_sequence
from indexer.ingest.sources import Source, discover_sources
from indexer.ingest.stages import Stages, shared_embedder
from reid.data.mot import read_mot
from reid.detect.catalog import install_model
from reid.detections import Detections
from reid.evaluate.tracking import score_sequence
from reid.synth.world import WorldConfig, generate_world
from reid.track import create_tracker, histogram_features
from reid.video import probe, read_frames
from reid.zones import Zones

LOWEST_SCORE = 0.05  # the cache holds boxes down to this score
# ReID vectors are cached for boxes down to the default low_score only (embedding every box down
# to 0.05 would cost minutes on NanoDet's PETS boxes); the reid cue is measured at the defaults
REID_FLOOR = 0.15
# (name, flat IngestConfig settings): the defaults first, then one change at a time
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("defaults", {}),
    ("low_score None (one stage)", {"low_score": None}),
    ("low_score 0.05", {"low_score": 0.05}),
    ("low_score 0.1", {"low_score": 0.1}),
    ("low_score 0.2", {"low_score": 0.2}),
    ("low_score 0.25", {"low_score": 0.25}),
    ("max_gap 0", {"max_gap": 0}),
    ("max_gap 5", {"max_gap": 5}),
    ("max_gap 20", {"max_gap": 20}),
    ("overlap_cover 1.0 (off)", {"overlap_cover": 1.0}),
    ("overlap_cover 0.3", {"overlap_cover": 0.3}),
    ("overlap_cover 0.7", {"overlap_cover": 0.7}),
    ("max_cosine_distance 0.1", {"max_cosine_distance": 0.1}),
    ("max_cosine_distance 0.15", {"max_cosine_distance": 0.15}),
    ("max_cosine_distance 0.25", {"max_cosine_distance": 0.25}),
    ("max_cosine_distance 0.3", {"max_cosine_distance": 0.3}),
    ("clutter off", {"clutter": "off"}),
    ("clutter all", {"clutter": "all"}),
    ("max_age 15", {"max_age": 15}),
    ("max_age 20", {"max_age": 20}),
    ("max_age 45", {"max_age": 45}),
    ("max_age 60", {"max_age": 60}),
    ("n_init 1 (acts as 2)", {"n_init": 1}),  # a track is confirmed on an update, not at start
    ("n_init 2", {"n_init": 2}),
    ("n_init 4", {"n_init": 4}),
    ("n_init 5", {"n_init": 5}),
    ("appearance reid", {"appearance": "reid"}),  # only with --reid
    ("stitch", {"stitch": True}),
    ("stitch, stitch_look 0.25", {"stitch": True, "stitch_look": 0.25}),
    ("stitch, stitch_look 0.4", {"stitch": True, "stitch_look": 0.4}),
    ("stitch, stitch_speed 0.2", {"stitch": True, "stitch_speed": 0.2}),
    ("stitch, stitch_shape 1.5", {"stitch": True, "stitch_shape": 1.5}),
    ("stitch, stitch_shape 2.5", {"stitch": True, "stitch_shape": 2.5}),
    # track score (issue 21, 2026-12-07): YOLOX-Nano's profile has 0.5, NanoDet's none
    ("min_track_score 0 (off)", {"min_track_score": 0.0}),
    ("min_track_score 0.35", {"min_track_score": 0.35}),
    ("min_track_score 0.4", {"min_track_score": 0.4}),
    ("min_track_score 0.42", {"min_track_score": 0.42}),
    ("min_track_score 0.45", {"min_track_score": 0.45}),
    ("min_track_score 0.5", {"min_track_score": 0.5}),
    ("min_track_score 0.55", {"min_track_score": 0.55}),
    ("min_track_score 0.6", {"min_track_score": 0.6}),
    # combinations of the single changes that helped both real and synthetic footage
    ("combo: one stage + n_init 5", {"low_score": None, "n_init": 5}),
    ("combo: low_score 0.25 + n_init 5", {"low_score": 0.25, "n_init": 5}),
    ("combo: stitch + n_init 5", {"stitch": True, "n_init": 5}),
    ("combo: stitch + max_gap 5", {"stitch": True, "max_gap": 5}),
    ("combo: stitch + low_score 0.25 + n_init 5", {"stitch": True, "low_score": 0.25, "n_init": 5}),
    ("combo: stitch + low_score 0.2 + n_init 5", {"stitch": True, "low_score": 0.2, "n_init": 5}),
    ("combo: stitch + low_score 0.25", {"stitch": True, "low_score": 0.25}),
    ("combo: stitch + low_score 0.2", {"stitch": True, "low_score": 0.2}),
    ("combo: stitch + low_score 0.2 + max_gap 5", {"stitch": True, "low_score": 0.2, "max_gap": 5}),
    ("combo: stitch + one stage + n_init 5", {"stitch": True, "low_score": None, "n_init": 5}),
    (
        "combo: one stage + n_init 5 + max_cosine_distance 0.1",
        {"low_score": None, "n_init": 5, "max_cosine_distance": 0.1},
    ),
]


class Video:
    """One scored video: its cached boxes (with histograms) and the truth to score against."""

    def __init__(self, key: str, source: Source, gt: Detections, frames: tuple[int, int] | None,
                 score_zones: Zones) -> None:  # fmt: skip
        self.key = key  # unique among the videos (two worlds have the same camera names)
        self.source = source
        self.gt = score_zones.keep(source.zones.keep(_in_frames(gt, frames)))
        self.frames = frames
        self.score_zones = score_zones
        self.dets: dict[int, Detections] = {}
        self.high_score = 0.0
        self.reid: dict[int, np.ndarray] = {}  # frame -> ReID vectors of ``dets[frame]``

    def detect(self, cfg: IngestConfig, cache: Path, tag: str) -> None:
        """Fill ``dets`` (every frame, boxes >= LOWEST_SCORE, zones applied, histograms) from
        ``cache`` or by running the detector once."""
        path = cache / f"{tag}_{self.key}.pkl"
        if path.is_file():
            self.high_score, self.dets = pickle.loads(path.read_bytes())
            return
        info = probe(self.source.path)
        hw = (info.height, info.width)
        stages = Stages(replace(cfg, low_score=LOWEST_SCORE), self.source, hw)
        print(f"  detecting {tag} {self.source.camera}: {stages.detector_note}", file=sys.stderr)
        for k, frame, d in stages.detected(read_frames(info)):
            assert d is not None
            d = stages.zones.keep(d)
            d.embedding = histogram_features(frame, d)
            self.dets[k] = d
        stages.close()
        self.high_score = stages.high_score
        path.write_bytes(pickle.dumps((self.high_score, self.dets), pickle.HIGHEST_PROTOCOL))

    def embed(self, cfg: IngestConfig, cache: Path, tag: str) -> None:
        """Fill ``reid`` (each cached box's ReID vector) from ``cache`` or with the embedder."""
        path = cache / f"{tag}_{self.key}_reid.pkl"
        if path.is_file():
            self.reid = pickle.loads(path.read_bytes())
            return
        embedder = shared_embedder(cfg)
        print(f"  embedding {tag} {self.key}", file=sys.stderr)
        for k, frame in read_frames(probe(self.source.path)):
            d = self.dets[k]
            keep = d.confidence >= REID_FLOOR
            self.reid[k] = np.zeros((len(d), embedder.dim), np.float32)
            if keep.any():
                self.reid[k][keep] = embedder.embed(frame, d[keep]).embedding
        path.write_bytes(pickle.dumps(self.reid, pickle.HIGHEST_PROTOCOL))

    def score(self, cfg: IngestConfig) -> dict:
        """Replay the tracker with ``cfg`` on the cached boxes and score the tracks."""
        return score_sequence(self.gt, self.track(cfg))

    def track(self, cfg: IngestConfig) -> Detections:
        """Replay the tracker with ``cfg`` on the cached boxes: the scored tracked boxes."""
        if cfg.low_score is None or cfg.low_score >= self.high_score:
            bar, high = max(self.high_score, cfg.low_score or 0.0), 0.0  # one stage
        else:
            bar, high = cfg.low_score, self.high_score
        tracker = create_tracker("deepsort", config=cfg.tracker_for_video(), high_score=high)
        rows = []
        for k in sorted(self.dets):
            d = self.dets[k]
            if cfg.appearance == "reid":
                assert cfg.low_score is None or cfg.low_score >= REID_FLOOR
                d = Detections(d.xyxy, d.confidence, d.frame_idx, embedding=self.reid[k])
            tracked = tracker.update(d[d.confidence >= bar])
            if len(tracked):
                rows.append(tracked)
        hyp = Detections.merge(rows) if rows else Detections.empty()
        if hyp.track_id is None:  # no track at all (e.g. every track under min_track_score)
            hyp.track_id = np.zeros(0, np.int64)
        return self.score_zones.keep(self.source.zones.keep(_in_frames(hyp, self.frames)))


def _in_frames(dets: Detections, frames: tuple[int, int] | None) -> Detections:
    if frames is None:
        return dets
    return dets[(dets.frame_idx >= frames[0] - 1) & (dets.frame_idx <= frames[1] - 1)]


def _scaled(gt: Detections, scale: float) -> Detections:
    return Detections(xyxy=gt.xyxy * scale, confidence=gt.confidence, frame_idx=gt.frame_idx,
                      track_id=gt.track_id)  # fmt: skip


def sequences(shared: Path, cache: Path) -> dict[str, list[Video]]:
    """The bench's sequences: each real one a single video, each world its cameras."""
    out: dict[str, list[Video]] = {}
    real = {
        "PETS": (shared / PETS_SEQ.relative_to(SHARED_DATA), shared / PETS_VIDEO.relative_to(
            SHARED_DATA), PETS_FRAMES, PETS_ZONES),
        "TUD": (shared / TUD_SEQ.relative_to(SHARED_DATA), None, None, Zones()),
    }  # fmt: skip
    for name, (folder, video, frames, zones) in real.items():
        seq = read_sequence(folder, video=video)
        width = probe(seq.footage).width
        scale = width / seq.im_width if seq.im_width else 1.0
        source = Source(seq.footage, seq.name, None)
        out[name] = [Video(name, source, _scaled(read_mot(seq.gt_path), scale), frames, zones)]
    for name, wcfg in WORLDS.items():
        out[f"seed {wcfg.seed}"] = world_videos(
            cache / "worlds" / f"seed{wcfg.seed}", wcfg, f"seed{wcfg.seed}"
        )
        assert name.endswith(str(wcfg.seed))
    return out


def world_videos(world: Path, wcfg: WorldConfig, key: str) -> list[Video]:
    """A synthetic world's cameras as scored videos (rendered into ``world`` once)."""
    if not (world / "cameras.json").is_file():
        generate_world(world, wcfg)
    return [
        Video(f"{key}_{s.camera}", s, read_mot(s.gt_path), None, Zones())
        for s in discover_sources([world])
        if s.gt_path is not None
    ]


DEMO_WORLD = WorldConfig(seed=7)  # the full demo world of `reidtrace demo`: 4 cameras x 2 min


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path, help="folder for detections, worlds and the JSON")
    ap.add_argument("--shared", type=Path, default=SHARED_DATA, help="../shared/data")
    ap.add_argument("--yolox", type=Path, default=SHARED_DATA.parent / "models" / "yolox_nano.onnx")
    ap.add_argument("--only", nargs="*", default=None, help="setting names to run")
    ap.add_argument("--reid", action="store_true", help="also the ReID cue (embeds every box)")
    ap.add_argument(
        "--demo-world", action="store_true", help="also the full demo world (seed 7, 2 min)"
    )
    ap.add_argument(
        "--no-profiles",
        action="store_true",
        help="rows relative to the generic defaults, not each detector's tracking profile",
    )
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    models = args.cache / "models"
    if not (models / args.yolox.name).is_file():
        install_model("yolox-nano", args.yolox, models)
    detectors = {  # (config, the create_detector name ``auto`` resolves to: its profile)
        "NanoDet": (IngestConfig(models_dir=str(args.cache / "no-models")), "nanodet"),
        "YOLOX-Nano": (IngestConfig(models_dir=str(models)), "yolox"),
    }
    seqs = sequences(args.shared, args.cache)
    if args.demo_world:
        seqs["demo"] = world_videos(args.cache / "worlds" / "demo", DEMO_WORLD, "demo")
    results: dict[str, dict[str, dict[str, list]]] = {}
    for det, (base, family) in detectors.items():
        for vids in seqs.values():
            for v in vids:
                v.detect(base, args.cache, det)
                if args.reid:
                    v.embed(base, args.cache, det)
        for name, kw in SETTINGS:
            if (args.only and name not in args.only) or (kw.get("appearance") and not args.reid):
                continue
            t0 = time.perf_counter()
            cfg = replace(IngestConfig.from_settings(**kw), models_dir=base.models_dir)
            if not args.no_profiles:
                cfg = cfg.for_detector(family)[0]
            cfg.validate()
            row: dict[str, Any] = {}
            pooled: dict[str, dict] = {"real": {}, "synthetic": {}}
            for seq, vids in seqs.items():
                per = {f"{seq}/{v.source.camera}": v.score(cfg) for v in vids}
                p = pool_sequences(per)
                row[seq] = [p["mota"], p["idf1"], p["id_switches"]]
                pooled["real" if seq in ("PETS", "TUD") else "synthetic"].update(per)
            for group, per in pooled.items():
                p = pool_sequences(per)
                row[group] = [p["mota"], p["idf1"], p["id_switches"]]
            results.setdefault(det, {})[name] = row
            print(f"{det:10s} {name:28s} {json.dumps(row)} {time.perf_counter() - t0:.0f}s",
                  file=sys.stderr)  # fmt: skip
    (args.cache / "defaults_table.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(json.dumps(results))


def markdown(results: dict[str, dict[str, dict[str, list]]]) -> str:
    """One table per detector: MOTA / IDF1 per sequence and pooled, ID switches pooled."""
    out = []
    for det, rows in results.items():
        cols = list(next(iter(rows.values())))
        out += [f"**{det}** (MOTA / IDF1; ID switches for the pooled columns)", "",
                "| setting | " + " | ".join(cols) + " |",
                "| --- | " + " | ".join("---:" for _ in cols) + " |"]  # fmt: skip
        for name, row in rows.items():
            cells = [
                f"{m:.3f} / {i:.3f}" + (f" ({s})" if c in ("real", "synthetic") else "")
                for c, (m, i, s) in row.items()
            ]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
