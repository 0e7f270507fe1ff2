"""Where stored tracks miss people: recall per camera by visibility, box height and motion.

Usage::

    reidtrace tracks export OUT/cam1.txt --camera cam1 --format mot   # for every camera
    python benchmarks/track_recall.py WORLD OUT

``OUT/<camera>.txt`` are the exported tracks of an ingested synthetic world. A person counts
when at least 25% visible (as in ``evaluate-tracking``) and is found when it is matched one to
one (Hungarian on IoU, scipy) to a stored box of that frame at IoU >= 0.5. Height and motion
rows only count people at least 75% visible and (motion) at least 40 px tall; motion is the
foot point's movement over 5 frames divided by the box height (< 0.05: standing).
Written by hand: a few lines over our own readers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from reid.boxes import box_iou
from reid.data.mot import read_mot

VIS = ((0.25, 0.5), (0.5, 0.75), (0.75, 1.01))
HEIGHT = ((0, 40), (40, 60), (60, 80), (80, 120), (120, 10_000))
MOTION = ((0.0, 0.05), (0.05, 0.2), (0.2, 1e9))


def motion(gt) -> np.ndarray:
    """Foot movement over the next 5 frames, per box height (0 where the person is gone)."""
    keys = list(zip(gt.track_id.tolist(), gt.frame_idx.tolist(), strict=True))
    row = {k: i for i, k in enumerate(keys)}
    foot = np.c_[(gt.xyxy[:, 0] + gt.xyxy[:, 2]) / 2, gt.xyxy[:, 3]]
    h = np.maximum(gt.xyxy[:, 3] - gt.xyxy[:, 1], 1)
    out = np.zeros(len(gt))
    for i, (t, f) in enumerate(keys):
        j = row.get((t, f + 5))
        if j is not None:
            out[i] = np.hypot(*(foot[j] - foot[i])) / h[i]
    return out


def share(found: np.ndarray, mask: np.ndarray) -> str:
    return f"{found[mask].mean():.2f} ({mask.sum()})" if mask.any() else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("world", type=Path, help="a folder written by `reidtrace synth`")
    ap.add_argument("tracks", type=Path, help="folder of <camera>.txt MOT exports")
    args = ap.parse_args()
    cams = sorted(p.name for p in args.world.iterdir() if (p / "gt" / "gt.txt").is_file())
    if not cams:
        raise SystemExit(f"{args.world} holds no camera with gt/gt.txt")
    for cam in cams:
        path = args.tracks / f"{cam}.txt"
        if not path.is_file():
            raise SystemExit(f"no tracks for {cam}: export them to {path} first")
        gt, hyp = read_mot(args.world / cam / "gt" / "gt.txt"), read_mot(path)
        vis = gt.extra["visibility"]
        found = np.zeros(len(gt), bool)
        for f in np.unique(gt.frame_idx):
            gi, hi = np.where(gt.frame_idx == f)[0], np.where(hyp.frame_idx == f)[0]
            if len(hi):
                iou = box_iou(gt.xyxy[gi], hyp.xyxy[hi])
                r, c = linear_sum_assignment(-iou)
                found[gi[r[iou[r, c] >= 0.5]]] = True
        scored = vis >= 0.25
        h = gt.xyxy[:, 3] - gt.xyxy[:, 1]
        full = vis >= 0.75
        mov = motion(gt)
        print(f"{cam}: recall {found[scored].mean():.3f} of {scored.sum()} people-frames")
        rows = {
            "visibility": [(a, b, scored & (vis >= a) & (vis < b)) for a, b in VIS],
            "height px": [(a, b, full & (h >= a) & (h < b)) for a, b in HEIGHT],
            "motion/h": [(a, b, full & (h >= 40) & (mov >= a) & (mov < b)) for a, b in MOTION],
        }
        for name, bins in rows.items():
            cells = ", ".join(f"{a:g}-{b:g}: {share(found, m)}" for a, b, m in bins)
            print(f"  {name:11s}{cells}")


if __name__ == "__main__":
    main()
