import numpy as np
import pytest

from reid.detections import Detections
from reid.evaluate.tracking import score_tracking


def _dets(rows: list[tuple[int, int, float, float, float]]) -> Detections:
    """rows of (frame, id, x, y, consider)."""
    a = np.array(rows, float)
    xyxy = np.column_stack([a[:, 2], a[:, 3], a[:, 2] + 20, a[:, 3] + 50])
    return Detections(xyxy, a[:, 4], a[:, 0].astype(int), track_id=a[:, 1].astype(int))


def test_perfect_tracking() -> None:
    gt = _dets([(f, i, 10 + 30 * i + f, 10, 1) for f in range(10) for i in (1, 2)])
    s = score_tracking(gt, gt)
    assert s["mota"] == 1.0 and s["idf1"] == 1.0 and s["id_switches"] == 0


def test_one_switch_and_one_miss() -> None:
    gt = _dets([(f, 1, 10 + f, 10, 1) for f in range(10)])
    # the hypothesis changes id at frame 5 and misses frame 9
    hyp = _dets([(f, 7 if f < 5 else 8, 10 + f, 10, 1) for f in range(9)])
    s = score_tracking(gt, hyp)
    assert s["id_switches"] == 1 and s["misses"] == 1
    assert s["mota"] == pytest.approx(1 - (1 + 1) / 10)
    assert s["idf1"] == pytest.approx(2 * 5 / (10 + 9))


def test_ignored_gt_is_neither_miss_nor_false_positive() -> None:
    gt = _dets([(0, 1, 10, 10, 1), (0, 2, 100, 10, 0)])
    hyp_on_ignored = _dets([(0, 5, 10, 10, 1), (0, 6, 100, 10, 1)])
    hyp_without = _dets([(0, 5, 10, 10, 1)])
    for hyp in (hyp_on_ignored, hyp_without):
        s = score_tracking(gt, hyp)
        assert s["mota"] == 1.0 and s["false_positives"] == 0 and s["misses"] == 0
