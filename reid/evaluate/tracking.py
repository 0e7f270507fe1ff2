"""Tracking accuracy (MOTA, IDF1, identity switches) with motmetrics, MOTChallenge rules.

motmetrics does the bookkeeping (matching over time, IDF1's global assignment). The IoU
distance matrix is computed here because motmetrics 1.4's ``iou_matrix`` calls ``np.asfarray``,
which NumPy 2 removed. Ground-truth rows whose ``consider`` flag is 0 (mostly hidden people)
are ignore regions, as in MOTChallenge: they are not counted as misses, and hypotheses that
match them are not counted as false positives.
"""

from __future__ import annotations

import numpy as np

from reid.boxes import box_iou
from reid.detections import Detections

METRICS = [
    "mota",
    "motp",
    "idf1",
    "num_switches",
    "num_false_positives",
    "num_misses",
    "num_objects",
]


def iou_distance(a: np.ndarray, b: np.ndarray, max_iou_distance: float = 0.5) -> np.ndarray:
    """1 - IoU between xyxy boxes; pairs beyond ``max_iou_distance`` become NaN (no match)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    # in the boxes' own precision (float32 from Detections), as these scores always were
    d = 1.0 - box_iou(a, b, dtype=np.result_type(a, b))
    d[d > max_iou_distance] = np.nan
    return d


def score_tracking(gt: Detections, hyp: Detections, *, iou: float = 0.5) -> dict[str, float]:
    """MOTChallenge-style scores of tracked boxes ``hyp`` against ``gt`` (both with track ids)."""
    import motmetrics as mm

    if gt.track_id is None or hyp.track_id is None:
        raise ValueError("score_tracking needs track ids on both gt and hyp")
    consider = gt.confidence > 0
    acc = mm.MOTAccumulator(auto_id=False)
    frames = np.union1d(gt.frame_idx, hyp.frame_idx)
    for f in frames:
        g = gt[gt.frame_idx == f]
        h = hyp[hyp.frame_idx == f]
        cons = consider[gt.frame_idx == f]
        # drop hypotheses that sit on an ignored ground-truth box (and those ignored boxes)
        if (~cons).any() and len(h):
            d_ign = iou_distance(g.xyxy[~cons], h.xyxy, 1 - iou)
            matched_ign = ~np.isnan(d_ign).all(axis=0) if d_ign.size else np.zeros(len(h), bool)
            d_ok = iou_distance(g.xyxy[cons], h.xyxy, 1 - iou)
            better_ok = ~np.isnan(d_ok).all(axis=0) if d_ok.size else np.zeros(len(h), bool)
            h = h[~(matched_ign & ~better_ok)]
        g = g[cons]
        acc.update(
            g.track_id.tolist(),
            h.track_id.tolist(),
            iou_distance(g.xyxy, h.xyxy, 1 - iou),
            frameid=int(f),
        )
    mh = mm.metrics.create()
    summary = mh.compute(acc, metrics=METRICS, name="all")
    row = summary.loc["all"]
    return {
        "mota": float(row["mota"]),
        "motp": float(1.0 - row["motp"]) if np.isfinite(row["motp"]) else float("nan"),
        "idf1": float(row["idf1"]),
        "id_switches": int(row["num_switches"]),
        "false_positives": int(row["num_false_positives"]),
        "misses": int(row["num_misses"]),
        "gt_boxes": int(row["num_objects"]),
    }
