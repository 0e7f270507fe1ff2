"""Output adapters on hand-built tensors: known distributions and peaks -> known boxes."""

from __future__ import annotations

import numpy as np
import pytest

from reid.detect.decode import (
    DecodeError,
    decode_boxes,
    decode_centernet,
    decode_nanodet,
    decode_yolo,
)

INPUT = (416, 416)
GRIDS = {8: 52, 16: 26, 32: 13}


def _nanodet_outputs(bins: int = 11) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per stride: class scores [1, N, 80] (all 0.01) and flat box logits [1, N, 4 * bins]."""
    return {
        s: (
            np.full((1, g * g, 80), 0.01, np.float32),
            np.zeros((1, g * g, 4 * bins), np.float32),
        )
        for s, g in GRIDS.items()
    }


def _one_hot(sides: list[float], bins: int = 11) -> np.ndarray:
    """Box logits whose softmax puts all weight on bin ``d`` (or half on floor/ceil of d)."""
    logits = np.full((4, bins), -50.0, np.float32)
    for i, d in enumerate(sides):
        lo, hi = int(np.floor(d)), int(np.ceil(d))
        logits[i, lo] = logits[i, hi] = 50.0
    return logits.reshape(-1)


def test_nanodet_one_anchor_gives_the_known_box() -> None:
    outs = _nanodet_outputs()
    row, col, stride = 5, 7, 16
    cls, reg = outs[stride]
    cell = row * GRIDS[stride] + col
    cls[0, cell, 0] = 0.9  # person
    cls[0, cell + 1, 3] = 0.95  # a motorbike next to it: not a person, ignored
    reg[0, cell] = _one_hot([3, 2, 4, 2.5])  # l, t, r, b in bins; 2.5 = half on bins 2 and 3
    flat = [t for pair in outs.values() for t in pair][::-1]  # order must not matter
    xyxy, scores = decode_nanodet(flat, INPUT, min_score=0.5)
    cx, cy = (col + 0.5) * stride, (row + 0.5) * stride  # the cell centre: (120, 88)
    np.testing.assert_allclose(xyxy, [[cx - 48, cy - 32, cx + 64, cy + 40]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9])


def test_nanodet_cell_offset_and_threshold() -> None:
    outs = _nanodet_outputs()
    cls, reg = outs[8]
    cls[0, 0, 0] = 0.45
    reg[0, 0] = _one_hot([1, 1, 1, 1])
    flat = [t for pair in outs.values() for t in pair]
    assert len(decode_nanodet(flat, INPUT, min_score=0.5)[0]) == 0
    xyxy, _ = decode_nanodet(flat, INPUT, min_score=0.4, cell_offset=0.0)
    np.testing.assert_allclose(xyxy, [[-8, -8, 8, 8]], atol=1e-3)


def test_nanodet_plus_single_concatenated_output() -> None:
    outs = _nanodet_outputs(bins=8)  # NanoDet-Plus: reg_max 7
    cls, reg = outs[32]
    cls[0, 14, 0] = 0.8  # row 1, col 1 of the 13x13 grid
    reg[0, 14] = _one_hot([1, 1, 2, 3], bins=8)
    single = np.concatenate([np.concatenate(outs[s], axis=2) for s in (8, 16, 32)], axis=1)
    assert single.shape == (1, 52 * 52 + 26 * 26 + 13 * 13, 80 + 32)
    xyxy, scores = decode_nanodet([single], INPUT, min_score=0.5, cell_offset=0.0)
    np.testing.assert_allclose(xyxy, [[0, 0, 96, 128]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.8])


def test_nanodet_rejects_foreign_shapes() -> None:
    with pytest.raises(DecodeError, match="rows"):
        decode_nanodet([np.zeros((1, 100, 80)), np.zeros((1, 100, 44))], INPUT, min_score=0.5)


def test_yolov5_rows_with_objectness() -> None:
    out = np.zeros((1, 3, 85), np.float32)
    out[0, 0, :6] = [100, 50, 20, 60, 0.9, 0.8]  # person: 0.9 * 0.8
    out[0, 1, :5] = [10, 10, 5, 5, 0.9]
    out[0, 1, 5 + 2] = 0.99  # a car
    out[0, 2, :6] = [30, 30, 10, 10, 0.5, 0.5]  # 0.25: below threshold
    xyxy, scores = decode_yolo(out, min_score=0.3)
    np.testing.assert_allclose(xyxy, [[90, 20, 110, 80]])
    np.testing.assert_allclose(scores, [0.72], rtol=1e-6)


def test_yolov8_attributes_first_without_objectness() -> None:
    out = np.zeros((1, 84, 4), np.float32)
    out[0, :5, 2] = [200, 100, 40, 80, 0.6]
    out[0, 4 + 1, 3] = 0.9  # a bicycle
    xyxy, scores = decode_yolo(out, min_score=0.3)
    np.testing.assert_allclose(xyxy, [[180, 60, 220, 140]])
    np.testing.assert_allclose(scores, [0.6])
    with pytest.raises(DecodeError, match="no axis"):
        decode_yolo(np.zeros((1, 90, 4)), min_score=0.3)


def test_centernet_peak_size_and_offset() -> None:
    hm = np.zeros((1, 80, 128, 128), np.float32)
    hm[0, 0, 30, 40] = 0.8
    hm[0, 0, 30, 41] = 0.5  # a neighbour of the peak: suppressed by the 3x3 max
    hm[0, 0, 100, 10] = 0.2  # below threshold
    hm[0, 5, 60, 60] = 0.9  # a bus
    wh = np.zeros((1, 2, 128, 128), np.float32)
    off = np.zeros((1, 2, 128, 128), np.float32)
    wh[0, :, 30, 40] = [10, 30]
    off[0, :, 30, 40] = [0.25, 0.5]
    xyxy, scores = decode_centernet(hm, wh, off, (512, 512), min_score=0.3)
    # stride 4: centre (40.25 * 4, 30.5 * 4) = (161, 122), size (40, 120)
    np.testing.assert_allclose(xyxy, [[141, 62, 181, 182]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.8])


def test_centernet_sigmoids_logit_heatmaps() -> None:
    hm = np.full((1, 1, 8, 8), -10.0, np.float32)
    hm[0, 0, 2, 3] = 2.0  # logit -> 0.88
    xyxy, scores = decode_centernet(
        hm, np.ones((1, 2, 8, 8)), np.zeros((1, 2, 8, 8)), (64, 64), min_score=0.5
    )
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-2.0))], rtol=1e-5)
    np.testing.assert_allclose(xyxy, [[20, 12, 28, 20]])


def test_decoded_boxes_keep_person_rows_above_the_score() -> None:
    rows = np.array(
        [
            [10, 20, 50, 120, 0.9, 0],  # person
            [15, 25, 55, 125, 0.3, 0],  # person, below the score
            [60, 20, 90, 60, 0.95, 2],  # a car
            [0, 0, 0, 0, np.nan, 0],  # padding row of a fixed-size output
        ],
        np.float32,
    )[None]
    xyxy, scores = decode_boxes(rows, min_score=0.4)
    np.testing.assert_array_equal(xyxy, [[10, 20, 50, 120]])
    np.testing.assert_allclose(scores, [0.9])
    with pytest.raises(DecodeError, match=r"\[1, N, 6\]"):
        decode_boxes(np.zeros((1, 10, 5), np.float32), min_score=0.4)
