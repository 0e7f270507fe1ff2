"""Detector boxes against the truth's box convention: size ratios and centre offsets.

Usage::

    python benchmarks/box_geometry.py CACHE [--detector YOLOX-Nano|NanoDet]

Reads the detections ``defaults_table.py`` cached in ``CACHE`` (run it first), pairs each truth
box of the bench's sequences (PETS frames 1-397 in the annotated area, TUD-Stadtmitte, the
worlds seed 7 and 11) with a strong detector box of its frame (Hungarian on IoU, pairs at
IoU >= 0.3), and prints per sequence the quartiles of detector / truth height and width, of the
centre's x offset in truth widths and of the top and bottom offsets in truth heights, for all
pairs and for the pairs at IoU 0.3-0.5 (the tracker's "localisation" errors). A systematic
ratio would be a box convention a correction could learn; offsets spread both ways are not.
Written by hand: a short loop over the cached boxes.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from defaults_table import SHARED_DATA, sequences  # benchmarks/ is the script's folder
from scipy.optimize import linear_sum_assignment

from reid.boxes import box_iou


def pairs(video, cache: Path, tag: str) -> np.ndarray:
    """(iou, h ratio, w ratio, centre x offset / w, top offset / h, bottom offset / h) rows."""
    high, dets = pickle.loads((cache / f"{tag}_{video.key}.pkl").read_bytes())
    gt, rows = video.gt, []
    for f in np.unique(gt.frame_idx):
        d = dets.get(int(f))
        g = gt.xyxy[gt.frame_idx == f]
        if d is None or not len(d):
            continue
        d = d.xyxy[d.confidence >= high]
        if not len(d):
            continue
        iou = box_iou(g, d)
        for i, j in zip(*linear_sum_assignment(-iou), strict=True):
            if iou[i, j] < 0.3:
                continue
            (g0, g1, g2, g3), (d0, d1, d2, d3) = g[i], d[j]
            gw, gh = g2 - g0, g3 - g1
            centre = ((d0 + d2) - (g0 + g2)) / 2 / gw
            rows.append([iou[i, j], (d3 - d1) / gh, (d2 - d0) / gw, centre, (d1 - g1) / gh,
                         (d3 - g3) / gh])  # fmt: skip
    return np.asarray(rows).reshape(-1, 6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("--detector", default="YOLOX-Nano", choices=("YOLOX-Nano", "NanoDet"))
    args = ap.parse_args()
    names = ("height ratio", "width ratio", "centre x / w", "top / h", "bottom / h")
    for seq, vids in sequences(SHARED_DATA, args.cache).items():
        a = np.concatenate([pairs(v, args.cache, args.detector) for v in vids])
        low = a[:, 0] < 0.5
        print(f"{seq}: {len(a)} pairs, {int(low.sum())} at IoU 0.3-0.5, median IoU "
              f"{np.median(a[:, 0]):.3f}")  # fmt: skip
        for k, name in enumerate(names, 1):
            print(f"  {name:13s} all {_quartiles(a[:, k])}   IoU 0.3-0.5 {_quartiles(a[low, k])}")


def _quartiles(x: np.ndarray) -> str:
    return " ".join(f"{v:+.3f}" for v in np.percentile(x, [25, 50, 75])) if len(x) else "-"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
