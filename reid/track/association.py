"""Assignment of boxes to tracks: DeepSORT's appearance cascade, then IoU.

Costs are (tracks x boxes) matrices; ``GATED`` marks pairs that may not be matched. The
Hungarian algorithm is scipy's. The order in which unmatched boxes are returned matters (new
tracks are numbered in that order) and follows deep-sort-realtime 1.3.2, which this replaces,
so stored tracks are unchanged (``reid.track.deepsort``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from reid.track import kalman
from reid.vectors import l2_normalize

GATED = 1e5
"""The cost of a pair that the gate forbids (large, finite: the Hungarian solver needs that)."""

Cost = Callable[[list[int], list[int]], np.ndarray]
"""(track indices, box indices) -> cost matrix (len(tracks), len(boxes))."""


def min_cost_matching(
    cost_of: Cost, max_cost: float, tracks: Sequence[int], boxes: Sequence[int]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """``(matches, unmatched tracks, unmatched boxes)``: the cheapest one-to-one assignment,
    keeping only pairs that cost at most ``max_cost``."""
    tracks, boxes = list(tracks), list(boxes)
    if not boxes or not tracks:
        return [], tracks, boxes
    cost = cost_of(tracks, boxes)
    cost[cost > max_cost] = max_cost + 1e-5
    rows, cols = linear_sum_assignment(cost)
    taken_rows, taken_cols = set(rows.tolist()), set(cols.tolist())
    unmatched_boxes = [b for c, b in enumerate(boxes) if c not in taken_cols]
    unmatched_tracks = [t for r, t in enumerate(tracks) if r not in taken_rows]
    matches = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if cost[r, c] > max_cost:
            unmatched_tracks.append(tracks[r])
            unmatched_boxes.append(boxes[c])
        else:
            matches.append((tracks[r], boxes[c]))
    return matches, unmatched_tracks, unmatched_boxes


def nn_cosine_distance(gallery: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(m,) smallest cosine distance from each of ``features`` (m, d) to a track's ``gallery``
    (n, d). Both are normalised here: galleries hold raw vectors. (An all-zero vector, the
    histogram of a box too thin to see, is at distance 1 from everything.)"""
    return (1.0 - np.dot(l2_normalize(gallery), l2_normalize(features).T)).min(axis=0)


def ltwh_iou(box: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """IoU of one (left, top, width, height) box with (n, 4) candidates in the same form.

    Kept beside the tracker instead of ``reid.boxes.box_iou`` on purpose: the tracker's IoU stage
    works on (l, t, w, h) in mixed float64/float32, and this exact arithmetic keeps its ties (and
    so the stored tracks) the same as before the tracker was owned here.
    """
    tl = np.maximum(box[:2], candidates[:, :2])
    br = np.minimum(box[:2] + box[2:], candidates[:, :2] + candidates[:, 2:])
    wh = np.maximum(0.0, br - tl)
    inter = wh.prod(axis=1)
    return inter / (box[2:].prod() + candidates[:, 2:].prod(axis=1) - inter)


def iou_cost(
    means: Sequence[np.ndarray], since_update: Sequence[int], ltwh: np.ndarray
) -> np.ndarray:
    """1 - IoU of each track's predicted box with each box; tracks missed for more than one
    frame are gated (their prediction has drifted too far to trust overlap)."""
    cost = np.zeros((len(means), len(ltwh)))
    for row, (mean, since) in enumerate(zip(means, since_update, strict=True)):
        if since > 1:
            cost[row, :] = GATED
        else:
            cost[row, :] = 1.0 - ltwh_iou(kalman.to_ltwh(mean), ltwh)
    return cost


def gate(
    cost: np.ndarray,
    states: Sequence[tuple[np.ndarray, np.ndarray]],
    xyah: np.ndarray,
    only_position: bool = False,
) -> np.ndarray:
    """``cost`` with every pair whose box is implausible for the track's motion set to GATED."""
    threshold = kalman.CHI2_95[2 if only_position else 4]
    for row, (mean, cov) in enumerate(states):
        cost[row, kalman.gating_distance(mean, cov, xyah, only_position) > threshold] = GATED
    return cost
