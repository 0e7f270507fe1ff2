"""HOTA on hand-made sequences whose scores follow from the definition by hand."""

import numpy as np
import pytest

from reid.evaluate.hota import ALPHAS, hota_counts, hota_scores


def _frame(gt_ids, hyp_ids, iou) -> tuple:
    return np.array(gt_ids), np.array(hyp_ids), np.array(iou, float).reshape(len(gt_ids), -1)


def test_perfect_tracking_scores_one() -> None:
    frames = [_frame([1, 2], [7, 8], [[1, 0], [0, 1]]) for _ in range(5)]
    assert hota_scores(hota_counts(frames)) == pytest.approx({"hota": 1, "deta": 1, "assa": 1})


def test_an_identity_switch_halves_association() -> None:
    # one person, 10 frames, tracked perfectly in place but as id 7 then id 8
    frames = [_frame([1], [7 if t < 5 else 8], [[1.0]]) for t in range(10)]
    s = hota_scores(hota_counts(frames))
    # each true positive's pair is matched 5 frames out of 10 + 5 - 5 frames seen
    assert s["deta"] == pytest.approx(1) and s["assa"] == pytest.approx(0.5)
    assert s["hota"] == pytest.approx(np.sqrt(0.5))


def test_misses_and_false_boxes_lower_detection_only() -> None:
    # two people, one tracked; plus one false box the same frames: DetA = 1 / (1 + 1 + 1)
    frames = [_frame([1, 2], [7, 9], [[1, 0], [0, 0]]) for _ in range(4)]
    s = hota_scores(hota_counts(frames))
    assert s["deta"] == pytest.approx(1 / 3) and s["assa"] == pytest.approx(1)


def test_localisation_counts_only_below_the_overlap() -> None:
    # every match at IoU 0.5: a true positive for alpha 0.05 .. 0.50 (10 of 19 thresholds)
    frames = [_frame([1], [7], [[0.5]]) for _ in range(3)]
    s = hota_scores(hota_counts(frames))
    assert s["hota"] == pytest.approx(10 / len(ALPHAS))


def test_the_matching_prefers_the_identity_that_agrees_over_time() -> None:
    # truth 1 is tracked as 7 on four frames; on the fifth, 7 and 8 overlap it almost equally
    # (8 slightly more): HOTA's matching keeps 7, a per-frame best-IoU matching would take 8
    frames = [_frame([1], [7], [[0.9]]) for _ in range(4)]
    frames.append(_frame([1], [7, 8], [[0.80, 0.82]]))
    c = hota_counts(frames)
    assert c.fp[0] == 1 and c.tp[0] == 5
    assert hota_scores(c)["assa"] > 0.8


def test_pooling_adds_the_counts_and_empty_sequences_score_zero() -> None:
    a = hota_counts([_frame([1], [7], [[1.0]])])
    b = hota_counts([_frame([1], [], np.zeros((1, 0)))])
    pooled = a + b
    assert pooled.tp[0] == 1 and pooled.fn[0] == 1
    assert hota_scores(pooled)["deta"] == pytest.approx(0.5)
    assert hota_scores(hota_counts([]))["hota"] == 0
