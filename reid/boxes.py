"""Box geometry shared by every stage: conversions, area, intersection, IoU, clipping.

Boxes are ``(n, 4)`` arrays of pixel corners ``x1, y1, x2, y2`` (xyxy, as in
:class:`reid.detections.Detections`) unless a name says otherwise: ``xywh`` is the MOTChallenge
top-left + size (also called tlwh), ``cxcywh`` the centre + size that detector heads emit.

Detectors, the tracker, the tracking metrics, the synthetic world and the benchmarks all measure
overlaps here, so "IoU" means one thing everywhere. Area, intersection and IoU compute in
``float64`` by default (the tracker's and the benchmarks' choice); ``dtype=np.float32`` keeps
the single-precision arithmetic that the MOTChallenge scoring has always used, so its matches
and printed numbers do not move. Conversions keep their input's dtype. Malformed arrays are
bugs of the caller, not user input, so they raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "box_area",
    "box_intersection",
    "box_iou",
    "clip_boxes",
    "cxcywh_to_xyxy",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]

UNION_EPS = 1e-9
"""Floor of the union in :func:`box_iou`: degenerate (zero-area) pairs get IoU 0, not NaN."""


def _as_boxes(boxes: ArrayLike, dtype: DTypeLike | None = None) -> np.ndarray:
    """``boxes`` as an ``(n, 4)`` array (one box may be given as a flat 4-vector)."""
    arr = np.asarray(boxes, dtype=dtype)
    if arr.size % 4 or (arr.ndim > 1 and arr.shape[-1] != 4):
        raise ValueError(f"boxes must have 4 coordinates per row, got shape {arr.shape}")
    return arr.reshape(-1, 4)


def xyxy_to_xywh(xyxy: ArrayLike) -> np.ndarray:
    """Corners -> top-left corner + width, height (MOTChallenge, OpenCV's ``NMSBoxes``)."""
    out = _as_boxes(xyxy).copy()
    out[:, 2:] -= out[:, :2]
    return out


def xywh_to_xyxy(xywh: ArrayLike) -> np.ndarray:
    """Top-left corner + width, height (MOTChallenge ``gt.txt``, OpenCV stats) -> corners."""
    out = _as_boxes(xywh).copy()
    out[:, 2:] += out[:, :2]
    return out


def cxcywh_to_xyxy(cxcywh: ArrayLike) -> np.ndarray:
    """Centre + width, height (YOLO and CenterNet heads) -> corners."""
    b = _as_boxes(cxcywh)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def box_area(xyxy: ArrayLike, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """(n,) areas of xyxy boxes (negative for inverted boxes: callers clip first)."""
    b = _as_boxes(xyxy, dtype)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_intersection(a: ArrayLike, b: ArrayLike, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """(n, m) intersection areas of two sets of xyxy boxes (0 where they do not overlap)."""
    a3 = _as_boxes(a, dtype)[:, None, :]
    b3 = _as_boxes(b, dtype)[None, :, :]
    lo = np.maximum(a3[..., :2], b3[..., :2])
    hi = np.minimum(a3[..., 2:], b3[..., 2:])
    return np.prod(np.clip(hi - lo, 0.0, None), axis=2)


def box_iou(a: ArrayLike, b: ArrayLike, *, dtype: DTypeLike = np.float64) -> np.ndarray:
    """(n, m) intersection over union of two sets of xyxy boxes."""
    inter = box_intersection(a, b, dtype=dtype)
    union = box_area(a, dtype=dtype)[:, None] + box_area(b, dtype=dtype)[None, :] - inter
    return inter / np.maximum(union, UNION_EPS)


def clip_boxes(xyxy: ArrayLike, frame_shape: tuple[int, ...]) -> np.ndarray:
    """A copy of the boxes with x in ``[0, width]`` and y in ``[0, height]`` of ``frame_shape``.

    ``frame_shape`` is an image's ``shape`` (height first), so ``clip_boxes(b, frame.shape)``
    reads as it should; the dtype is kept.
    """
    h, w = frame_shape[:2]
    out = _as_boxes(xyxy).copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h)
    return out
