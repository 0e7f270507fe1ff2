"""reid.boxes: conversions, area, intersection, IoU and clipping on hand-computed boxes."""

from __future__ import annotations

import numpy as np
import pytest

from reid.boxes import (
    box_area,
    box_intersection,
    box_iou,
    clip_boxes,
    cxcywh_to_xyxy,
    xywh_to_xyxy,
    xyxy_to_xywh,
)

A = np.array([[0, 0, 10, 10], [5, 5, 15, 25]], np.float32)  # areas 100 and 200
B = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)


def test_conversions_round_trip_and_keep_the_dtype() -> None:
    xywh = xyxy_to_xywh(A)
    np.testing.assert_array_equal(xywh, [[0, 0, 10, 10], [5, 5, 10, 20]])
    assert xywh.dtype == np.float32
    np.testing.assert_array_equal(xywh_to_xyxy(xywh), A)
    np.testing.assert_array_equal(cxcywh_to_xyxy([[10, 20, 4, 6]]), [[8, 17, 12, 23]])
    np.testing.assert_array_equal(xywh_to_xyxy([1, 2, 3, 4]), [[1, 2, 4, 6]])  # one flat box


def test_conversions_do_not_write_into_their_input() -> None:
    boxes = A.copy()
    xyxy_to_xywh(boxes)
    xywh_to_xyxy(boxes)
    np.testing.assert_array_equal(boxes, A)


def test_area_intersection_and_iou_by_hand() -> None:
    np.testing.assert_array_equal(box_area(A), [100, 200])
    # A0 & B0: x 5..10, y 0..10 -> 50; A1 & B0: x 5..15, y 5..10 -> 50; A1 & B2: 5x5 = 25
    inter = box_intersection(A, B)
    np.testing.assert_array_equal(inter, [[50, 0, 100], [50, 0, 25]])
    iou = box_iou(A, B)
    want = [[50 / 150, 0, 1], [50 / 250, 0, 25 / 275]]
    np.testing.assert_allclose(iou, want, rtol=1e-12)
    assert iou.dtype == np.float64 and box_iou(A, B, dtype=np.float32).dtype == np.float32


def test_touching_degenerate_and_empty_boxes() -> None:
    touching = box_iou([[0, 0, 10, 10]], [[10, 0, 20, 10]])
    point = box_iou([[3, 3, 3, 3]], [[3, 3, 3, 3]])  # zero area: IoU 0, not NaN
    assert touching[0, 0] == 0 and point[0, 0] == 0
    assert box_iou(np.zeros((0, 4)), B).shape == (0, 3)
    assert box_intersection(A, np.zeros((0, 4))).shape == (2, 0)


def test_clip_keeps_boxes_inside_the_frame() -> None:
    frame_shape = (20, 30, 3)  # height 20, width 30
    boxes = np.array([[-5, -2, 12, 8], [25, 15, 40, 30]], np.float32)
    clipped = clip_boxes(boxes, frame_shape)
    np.testing.assert_array_equal(clipped, [[0, 0, 12, 8], [25, 15, 30, 20]])
    assert clipped.dtype == np.float32 and boxes[0, 0] == -5  # a copy


@pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(5), np.zeros((2, 2, 2))])
def test_rows_of_other_than_four_numbers_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="4 coordinates"):
        box_area(bad)
