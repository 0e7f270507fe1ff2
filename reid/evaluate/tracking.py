"""Tracking accuracy (MOTA, IDF1, identity switches) with motmetrics, MOTChallenge rules; HOTA
from ``reid.evaluate.hota`` on the same frames.

motmetrics does the bookkeeping (matching over time, IDF1's global assignment). The IoU
distance matrix is computed here because motmetrics 1.4's ``iou_matrix`` calls ``np.asfarray``,
which NumPy 2 removed. Ground-truth rows whose ``consider`` flag is 0 (mostly hidden people)
are ignore regions, as in MOTChallenge: they are not counted as misses, and hypotheses that
match them are not counted as false positives.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from reid.boxes import box_iou
from reid.detections import Detections
from reid.evaluate.hota import hota_counts, hota_scores

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


def _scored_frames(gt: Detections, hyp: Detections, iou: float) -> Iterator[tuple]:
    """Per frame ``(frame, gt_ids, hyp_ids, gt_xyxy, hyp_xyxy)`` with the ignored truth (flag 0)
    and the hypotheses that sit on it (and on no considered truth) removed."""
    if gt.track_id is None or hyp.track_id is None:
        raise ValueError("tracking scores need track ids on both gt and hyp")
    consider = gt.confidence > 0
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
        yield int(f), g.track_id, h.track_id, g.xyxy, h.xyxy


def score_tracking(gt: Detections, hyp: Detections, *, iou: float = 0.5) -> dict[str, float]:
    """MOTChallenge-style scores of tracked boxes ``hyp`` against ``gt`` (both with track ids);
    HOTA, recall and precision are in :func:`score_sequence`."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    for f, g_ids, h_ids, g_xyxy, h_xyxy in _scored_frames(gt, hyp, iou):
        acc.update(g_ids.tolist(), h_ids.tolist(), iou_distance(g_xyxy, h_xyxy, 1 - iou), frameid=f)
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


def score_sequence(gt: Detections, hyp: Detections, *, iou: float = 0.5) -> dict:
    """``score_tracking`` plus recall, precision and HOTA (``reid.evaluate.hota``), with the same
    ignore regions; ``hota_counts`` (per-threshold sums) lets several sequences be pooled."""
    scores = score_tracking(gt, hyp, iou=iou)
    frames = [
        (g_ids, h_ids, box_iou(g_xyxy, h_xyxy))
        for _, g_ids, h_ids, g_xyxy, h_xyxy in _scored_frames(gt, hyp, iou)
    ]
    counts = hota_counts(frames)
    matched = scores["gt_boxes"] - scores["misses"]
    return {
        **scores,
        "hyp_boxes": matched + scores["false_positives"],
        "recall": matched / max(scores["gt_boxes"], 1),
        "precision": matched / max(matched + scores["false_positives"], 1),
        **hota_scores(counts),
        "hota_counts": counts,
    }
