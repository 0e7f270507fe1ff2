"""Output-format adapters: raw detector tensors -> person boxes in network-input pixels.

One pure numpy function per family, so the box math can be tested on hand-built tensors and a
user's own ONNX file only has to say which family it belongs to. Each returns ``(xyxy, scores)``
for the person class, already filtered by ``min_score`` (decoding only the candidates is what
keeps the post-processing cheap next to the network); thresholding, clipping and NMS in frame
pixels are done afterwards by the caller for every family alike.

Families:

- ``nanodet``: NanoDet's GFL head. Per stride level a class-score map ``[1, N, C]`` (already
  sigmoided) and a box-side distribution ``[1, N, 4 * (R + 1)]``; each side's distance is the
  softmax-weighted mean bin index times the stride, measured from the cell centre. Also accepts
  NanoDet-Plus exports that concatenate everything into one ``[1, N_total, C + 4 * (R + 1)]``.
- ``yolo``: YOLOv5-style ``[1, N, 5 + C]`` (cx, cy, w, h, objectness, class scores) or
  YOLOv8-style ``[1, 4 + C, N]`` (no objectness), boxes in input pixels, scores sigmoided.
- ``centernet``: a class heatmap ``[1, C, h, w]`` plus size ``[1, 2, h, w]`` and sub-pixel
  offset ``[1, 2, h, w]``, all at the heatmap's resolution; peaks are 3x3 local maxima.
- ``yolox``: YOLOX's raw head ``[1, N, 5 + C]``, one row per cell of the stride 8, 16 and 32
  grids in that order, each grid row-major: x, y = (out + cell) * stride, w, h = exp(out) *
  stride, score = objectness * class score (both already sigmoided in the graph).
- ``boxes``: detections already decoded inside the graph (TensorFlow and TF.js exports, the
  bundled CenterNet): ``[1, N, 6]`` rows of x1, y1, x2, y2 (input pixels), score, class.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import cv2
import numpy as np

from reid.boxes import cxcywh_to_xyxy

__all__ = [
    "decode_boxes",
    "decode_centernet",
    "decode_nanodet",
    "decode_yolo",
    "decode_yolox",
    "nanodet_levels",
    "yolox_grid",
]

NANODET_STRIDES = (8, 16, 32, 64)
YOLOX_STRIDES = (8, 16, 32)


class DecodeError(ValueError):
    """The tensors do not have the shapes of the family asked for (reported to the user)."""


def nanodet_levels(input_hw: tuple[int, int], num_levels: int) -> list[tuple[int, int, int]]:
    """``(stride, rows, cols)`` of the first ``num_levels`` NanoDet levels for this input."""
    h, w = input_hw
    return [(s, math.ceil(h / s), math.ceil(w / s)) for s in NANODET_STRIDES[:num_levels]]


def _split_nanodet(
    outputs: Sequence[np.ndarray], input_hw: tuple[int, int], num_classes: int
) -> list[tuple[int, int, int, np.ndarray, np.ndarray]]:
    """Pair each level's class and box tensors: ``(stride, rows, cols, cls, reg)`` per level."""
    mats = [np.asarray(o) for o in outputs]
    mats = [m.reshape(m.shape[-2], m.shape[-1]) for m in mats if m.ndim >= 2]
    by_rows = {rows * cols: (s, rows, cols) for s, rows, cols in nanodet_levels(input_hw, 4)}
    levels = []
    if len(mats) == 1 and mats[0].shape[1] > num_classes:  # NanoDet-Plus: one tensor
        mat = mats[0]
        start = 0
        for s, rows, cols in nanodet_levels(input_hw, 4):
            if start == mat.shape[0]:
                break
            n = rows * cols
            part = mat[start : start + n]
            levels.append((s, rows, cols, part[:, :num_classes], part[:, num_classes:]))
            start += n
        if start != mat.shape[0]:
            raise DecodeError(
                f"a single NanoDet output of {mat.shape[0]} rows does not match the stride "
                f"8/16/32(/64) grids of a {input_hw[0]}x{input_hw[1]} input"
            )
    else:
        groups: dict[int, list[np.ndarray]] = {}
        for m in mats:
            groups.setdefault(m.shape[0], []).append(m)
        for n, group in sorted(groups.items(), key=lambda kv: -kv[0]):
            if n not in by_rows:
                raise DecodeError(
                    f"a NanoDet output has {n} rows, not one of the stride 8/16/32/64 grids of a "
                    f"{input_hw[0]}x{input_hw[1]} input ({sorted(by_rows, reverse=True)})"
                )
            cls = [g for g in group if g.shape[1] == num_classes]
            reg = [g for g in group if g.shape[1] != num_classes and g.shape[1] % 4 == 0]
            if len(cls) != 1 or len(reg) != 1:
                shapes = [g.shape for g in group]
                raise DecodeError(
                    f"NanoDet level with {n} cells needs one [N, {num_classes}] class tensor and "
                    f"one [N, 4*(R+1)] box tensor, got {shapes}"
                )
            levels.append((*by_rows[n], cls[0], reg[0]))
    if not levels:
        raise DecodeError("no NanoDet outputs found")
    return levels


def decode_nanodet(
    outputs: Sequence[np.ndarray],
    input_hw: tuple[int, int],
    *,
    min_score: float,
    person_class: int = 0,
    num_classes: int = 80,
    cell_offset: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode NanoDet outputs to person boxes in input pixels.

    ``cell_offset`` is where a cell's anchor point sits inside it: 0.5 (the centre) for the
    original NanoDet (the bundled model: without it recall halves), 0 for NanoDet-Plus exports.
    """
    boxes, scores = [], []
    for stride, _rows, cols, cls, reg in _split_nanodet(outputs, input_hw, num_classes):
        score = cls[:, person_class].astype(np.float32)
        idx = np.flatnonzero(score >= min_score)
        if not len(idx):
            continue
        bins = reg.shape[1] // 4
        dist = reg[idx].reshape(-1, 4, bins).astype(np.float32)
        dist = np.exp(dist - dist.max(axis=2, keepdims=True))
        dist /= dist.sum(axis=2, keepdims=True)
        sides = (dist @ np.arange(bins, dtype=np.float32)) * stride  # (k, 4): l, t, r, b
        cx = (idx % cols + cell_offset) * stride
        cy = (idx // cols + cell_offset) * stride
        boxes.append(
            np.stack([cx - sides[:, 0], cy - sides[:, 1], cx + sides[:, 2], cy + sides[:, 3]], 1)
        )
        scores.append(score[idx])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.concatenate(boxes).astype(np.float32), np.concatenate(scores)


def decode_yolo(
    output: np.ndarray,
    *,
    min_score: float,
    person_class: int = 0,
    num_classes: int = 80,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode a YOLOv5 ``[1, N, 5+C]`` or YOLOv8 ``[1, 4+C, N]`` output to person boxes.

    The layout is told apart by which axis has ``4 + C`` or ``5 + C`` entries, so that both
    exports of the same family work without a flag; ``5 + C`` means there is an objectness
    column, multiplied into the class score as YOLOv5 does.
    """
    mat = np.asarray(output)
    if mat.ndim == 3:
        if mat.shape[0] != 1:
            raise DecodeError(f"YOLO output batch must be 1, got shape {mat.shape}")
        mat = mat[0]
    if mat.ndim != 2:
        raise DecodeError(f"YOLO output must be [1, N, 5+C] or [1, 4+C, N], got {output.shape}")
    widths = (4 + num_classes, 5 + num_classes)
    if mat.shape[1] not in widths and mat.shape[0] in widths:
        mat = mat.T  # YOLOv8: attributes first
    if mat.shape[1] not in widths:
        raise DecodeError(
            f"YOLO output {tuple(output.shape)} has no axis of {widths[0]} (v8: box + classes) or "
            f"{widths[1]} (v5: box + objectness + classes) entries for {num_classes} classes"
        )
    has_obj = mat.shape[1] == 5 + num_classes
    score = mat[:, (5 if has_obj else 4) + person_class].astype(np.float32)
    if has_obj:
        score = score * mat[:, 4].astype(np.float32)
    idx = np.flatnonzero(score >= min_score)
    xyxy = cxcywh_to_xyxy(mat[idx, :4].astype(np.float32))
    return xyxy, score[idx]


@functools.lru_cache(maxsize=8)
def yolox_grid(input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(cells, strides)`` of YOLOX's rows for this input: (N, 2) cell x, y and (N,) stride.

    Cached because every frame of a camera has the same input size, and the grid is the only
    part of decoding that does not depend on the frame.
    """
    cells, strides = [], []
    for s in YOLOX_STRIDES:
        rows, cols = input_hw[0] // s, input_hw[1] // s
        ys, xs = np.mgrid[0:rows, 0:cols]
        cells.append(np.stack([xs.reshape(-1), ys.reshape(-1)], 1))
        strides.append(np.full(rows * cols, s, np.float32))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides)


def decode_yolox(
    output: np.ndarray,
    input_hw: tuple[int, int],
    *,
    min_score: float,
    person_class: int = 0,
    num_classes: int = 80,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode YOLOX's raw ``[1, N, 5 + C]`` head (exported without in-graph decoding).

    The row count must be that of the stride 8/16/32 grids of ``input_hw``: an output of another
    input size, or another family's, would otherwise decode into boxes in the wrong places.
    Only the candidates above ``min_score`` have their exponentials taken.
    """
    mat = np.asarray(output)
    if mat.ndim == 3 and mat.shape[0] == 1:
        mat = mat[0]
    if mat.ndim != 2 or mat.shape[1] != 5 + num_classes:
        raise DecodeError(
            f"YOLOX output must be [1, N, {5 + num_classes}] (box, objectness, {num_classes} "
            f"classes), got {tuple(np.shape(output))}"
        )
    cells, strides = yolox_grid((int(input_hw[0]), int(input_hw[1])))
    if mat.shape[0] != len(cells):
        raise DecodeError(
            f"YOLOX output has {mat.shape[0]} rows, but the stride 8/16/32 grids of a "
            f"{input_hw[0]}x{input_hw[1]} input have {len(cells)}"
        )
    score = mat[:, 4].astype(np.float32) * mat[:, 5 + person_class].astype(np.float32)
    idx = np.flatnonzero(score >= min_score)
    raw = mat[idx, :4].astype(np.float32)
    stride = strides[idx, None]
    centre = (raw[:, :2] + cells[idx]) * stride
    size = np.exp(np.minimum(raw[:, 2:], 20.0)) * stride  # capped: no inf on a garbage row
    xyxy = cxcywh_to_xyxy(np.concatenate([centre, size], 1)).astype(np.float32)
    return xyxy, score[idx]


def decode_centernet(
    heatmap: np.ndarray,
    wh: np.ndarray,
    offset: np.ndarray,
    input_hw: tuple[int, int],
    *,
    min_score: float,
    person_class: int = 0,
    top_k: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode CenterNet heads (heatmap, size, offset at the heatmap's resolution).

    Heatmaps still in logits (values outside [0, 1]) are sigmoided first, as exports differ on
    whether the sigmoid is in the graph. A peak is a cell that is the maximum of its 3x3
    neighbourhood, CenterNet's replacement for NMS; ``top_k`` bounds the work on noisy maps.
    """
    hm = np.asarray(heatmap, np.float32)
    wh_ = np.asarray(wh, np.float32)
    off = np.asarray(offset, np.float32)
    hm = hm[0] if hm.ndim == 4 else hm
    wh_ = wh_[0] if wh_.ndim == 4 else wh_
    off = off[0] if off.ndim == 4 else off
    if hm.ndim != 3 or wh_.shape != (2, *hm.shape[1:]) or off.shape != (2, *hm.shape[1:]):
        raise DecodeError(
            f"CenterNet needs heatmap [1, C, h, w], size and offset [1, 2, h, w]; got "
            f"{tuple(np.shape(heatmap))}, {tuple(np.shape(wh))}, {tuple(np.shape(offset))}"
        )
    if person_class >= hm.shape[0]:
        raise DecodeError(f"heatmap has {hm.shape[0]} classes, person_class={person_class}")
    person = hm[person_class]
    if person.size and (person.min() < 0 or person.max() > 1):
        person = 1 / (1 + np.exp(-person))
    peaks = person == cv2.dilate(person, np.ones((3, 3), np.uint8))
    cand = np.flatnonzero(peaks & (person >= min_score))
    cand = cand[np.argsort(-person.reshape(-1)[cand], kind="stable")][:top_k]
    rows, cols = np.divmod(cand, person.shape[1])
    down_y = input_hw[0] / person.shape[0]
    down_x = input_hw[1] / person.shape[1]
    cx = (cols + off[0, rows, cols]) * down_x
    cy = (rows + off[1, rows, cols]) * down_y
    w = wh_[0, rows, cols] * down_x
    h = wh_[1, rows, cols] * down_y
    xyxy = cxcywh_to_xyxy(np.stack([cx, cy, w, h], axis=1)).astype(np.float32)
    return xyxy, person.reshape(-1)[cand].astype(np.float32)


def decode_boxes(
    out: np.ndarray, *, min_score: float, person_class: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Person rows of in-graph decoded detections ``[1, N, 6]`` (x1, y1, x2, y2, score, class).

    Padding rows (score 0 or NaN, as fixed-size TF outputs carry) fall out with the score test.
    """
    det = np.asarray(out, np.float32)
    det = det[0] if det.ndim == 3 else det
    if det.ndim != 2 or det.shape[1] != 6:
        raise DecodeError(
            f"decoded boxes need [1, N, 6] (x1, y1, x2, y2, score, class); got {np.shape(out)}"
        )
    keep = (np.rint(det[:, 5]) == person_class) & (det[:, 4] >= min_score)
    keep &= np.isfinite(det[:, :5]).all(axis=1)
    return det[keep, :4].copy(), det[keep, 4].copy()
