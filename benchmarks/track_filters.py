"""Offline corrections of finished tracks, scored on real and synthetic footage (issue 21).

Usage::

    python benchmarks/track_filters.py CACHE [--demo-world] [--only NAME ...] [KEY=VALUE ...]

Replays the tracker (each detector with its tracking profile, then the ``KEY=VALUE`` settings,
python literals) on the detections ``defaults_table.py`` cached in ``CACHE`` (run it first),
then applies one correction at a time to each video's tracked boxes before scoring, as an
offline pass at video close would: boxes narrowed about their centre (a box convention),
boxes cut by the image's left or right edge and narrower than r box heights dropped, every gap
in a track up to N frames interpolated (also stitched gaps), whole tracks whose mean detector
confidence (over real boxes) is under a bar dropped. Prints one markdown row per detector and
correction: MOTA / IDF1 per sequence, pooled real and synthetic (switches in brackets).
The online track score (``min_track_score``) is the tracker setting; this is its offline twin.
Written by hand: a loop over the project's own tracker and scorer.
"""

from __future__ import annotations

import argparse
import ast
import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from defaults_table import DEMO_WORLD, sequences, world_videos  # benchmarks/ is the folder

from indexer.ingest import IngestConfig
from indexer.ingest.evaluate import pool_sequences
from reid.detections import Detections
from reid.evaluate.tracking import score_sequence
from reid.video import probe

Fix = Callable[[Detections, int], Detections]  # (tracked boxes, frame width) -> boxes


def narrow(factor: float) -> Fix:
    def fix(h: Detections, width: int) -> Detections:
        h = h[np.arange(len(h))]
        cx, w = (h.xyxy[:, 0] + h.xyxy[:, 2]) / 2, (h.xyxy[:, 2] - h.xyxy[:, 0]) * factor
        h.xyxy = np.stack([cx - w / 2, h.xyxy[:, 1], cx + w / 2, h.xyxy[:, 3]], 1)
        return h

    return fix


def edge_slivers(ratio: float, margin: float = 2.0) -> Fix:
    def fix(h: Detections, width: int) -> Detections:
        x0, y0, x1, y1 = h.xyxy.T
        cut = (x0 <= margin) | (x1 >= width - margin)
        return h[~(cut & ((x1 - x0) < ratio * (y1 - y0)))]

    return fix


def fill_gaps(most: int) -> Fix:
    def fix(h: Detections, width: int) -> Detections:
        parts = [h]
        for t in np.unique(h.track_id):
            rows = np.flatnonzero(h.track_id == t)
            rows = rows[np.argsort(h.frame_idx[rows])]
            for a, b in itertools.pairwise(rows):
                n = int(h.frame_idx[b] - h.frame_idx[a] - 1)
                if 1 <= n <= most:
                    w = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[:, None]
                    one = h[np.full(n, a)]
                    one.xyxy = ((1 - w) * h.xyxy[a] + w * h.xyxy[b]).astype(np.float32)
                    one.confidence = np.zeros(n, np.float32)
                    one.frame_idx = np.arange(h.frame_idx[a] + 1, h.frame_idx[b], dtype=np.int64)
                    parts.append(one)
        return Detections.merge(parts)

    return fix


def drop_weak_tracks(bar: float) -> Fix:
    def fix(h: Detections, width: int) -> Detections:
        keep = np.zeros(len(h), bool)
        for t in np.unique(h.track_id):
            mine = h.track_id == t
            real = h.confidence[mine][h.confidence[mine] > 0]
            keep |= mine & (len(real) > 0 and float(real.mean()) >= bar)
        return h[keep]

    return fix


FIXES: dict[str, Fix] = {
    "none": lambda h, width: h,
    **{f"narrow x{f}": narrow(f) for f in (0.95, 0.9, 0.85)},
    **{f"edge slivers {r}": edge_slivers(r) for r in (0.2, 0.3, 0.4)},
    **{f"fill gaps {n}": fill_gaps(n) for n in (20, 30)},
    **{f"drop tracks under {b}": drop_weak_tracks(b) for b in (0.35, 0.4, 0.45, 0.5)},
}
FAMILY = {"NanoDet": ("nanodet", "no-models"), "YOLOX-Nano": ("yolox", "models")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("settings", nargs="*", help="KEY=VALUE (python literals)")
    ap.add_argument("--only", nargs="*", default=None, help=f"of: {', '.join(FIXES)}")
    ap.add_argument("--demo-world", action="store_true")
    args = ap.parse_args()
    kw = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.settings)}
    seqs = sequences(Path(__file__).resolve().parents[1].parent / "shared" / "data", args.cache)
    if args.demo_world:
        seqs["demo"] = world_videos(args.cache / "worlds" / "demo", DEMO_WORLD, "demo")
    widths = {v.key: probe(v.source.path).width for vids in seqs.values() for v in vids}
    print("| detector | correction | " + " | ".join([*seqs, "real", "synthetic"]) + " |")
    for det, (family, models) in FAMILY.items():
        cfg = replace(IngestConfig.from_settings(**kw), models_dir=str(args.cache / models))
        cfg = cfg.for_detector(family)[0].validate()
        tracked = {}
        for vids in seqs.values():
            for v in vids:
                v.detect(cfg, args.cache, det)
                tracked[v.key] = v.track(cfg)
        for name, fix in FIXES.items():
            if args.only and name not in args.only:
                continue
            cells, pooled = [], {"real": {}, "synthetic": {}}
            for seq, vids in seqs.items():
                per = {}
                for v in vids:
                    hyp = v.score_zones.keep(fix(tracked[v.key], widths[v.key]))
                    per[v.key] = score_sequence(v.gt, hyp)
                p = pool_sequences(per)
                cells.append(f"{p['mota']:.3f} / {p['idf1']:.3f}")
                pooled["real" if seq in ("PETS", "TUD") else "synthetic"].update(per)
            for per in pooled.values():
                p = pool_sequences(per)
                cells.append(f"{p['mota']:.3f} / {p['idf1']:.3f} ({p['id_switches']})")
            print(f"| {det} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
