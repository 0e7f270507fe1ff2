"""evaluate_rank: hand-computed cases, torchreid agreement, and a size that must run."""

from __future__ import annotations

import numpy as np
import pytest

from reid.errors import ReidTraceError
from reid.evaluate.protocol import RankResult, cosine_distmat, evaluate_rank


def _one_query(
    dists: list[float], g_pids: list[int], g_cams: list[int], q_pid: int = 1, q_cam: int = 1
) -> RankResult:
    return evaluate_rank(
        np.array([dists], np.float32),
        np.array([q_pid]),
        np.array(g_pids),
        np.array([q_cam]),
        np.array(g_cams),
        max_rank=10,
    )


def test_wrong_right_wrong_right() -> None:
    # ranked gallery: [wrong, right, wrong, right], all in other cameras
    # AP  = mean precision at the correct ones = (1/2 + 2/4) / 2 = 0.5
    # CMC = first correct at rank 2 -> [0, 1, 1, ...]; rank1 = 0, rank5 = rank10 = 1
    # INP = num_rel / rank of the last correct = 2 / 4 = 0.5
    res = _one_query([0.1, 0.2, 0.3, 0.4], [2, 1, 3, 1], [2, 2, 2, 3])
    assert res.mAP == pytest.approx(0.5)
    assert res.rank1 == 0.0 and res.rank5 == 1.0 and res.rank10 == 1.0
    assert res.mINP == pytest.approx(0.5)
    # 4 gallery entries but max_rank=10: the curve stays at 1 after the first match
    np.testing.assert_allclose(res.cmc, [0, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    assert res.num_query == 1 and res.num_gallery == 4


def test_same_camera_same_identity_is_ignored() -> None:
    # ranked gallery: [pid1 cam1 (ignored: same id, same camera as the query), pid2 cam1 (wrong:
    # another id in the same camera is a valid negative), pid1 cam2 (right)]
    # kept: [wrong, right] -> AP = (1/2) / 1 = 0.5, rank1 = 0, INP = 1 / 2
    # (had the same-camera entry counted, rank1 would be 1 and AP 1)
    res = _one_query([0.0, 0.1, 0.2], [1, 2, 1], [1, 1, 2])
    assert res.mAP == pytest.approx(0.5)
    assert res.rank1 == 0.0 and res.rank5 == 1.0
    assert res.mINP == pytest.approx(0.5)


def test_junk_ranked_first_is_ignored() -> None:
    # ranked gallery: [junk -1 (ignored), right, wrong, right]
    # kept: [right, wrong, right] -> AP = (1/1 + 2/3) / 2 = 5/6, rank1 = 1, INP = 2 / 3
    res = _one_query([0.0, 0.1, 0.2, 0.3], [-1, 1, 3, 1], [2, 2, 2, 3])
    assert res.mAP == pytest.approx(5 / 6)
    assert res.rank1 == 1.0
    assert res.mINP == pytest.approx(2 / 3)
    np.testing.assert_allclose(res.cmc[:3], [1, 1, 1])


def test_distractor_ranked_first_counts_as_wrong() -> None:
    # ranked gallery: [distractor 0 (same camera: still an ordinary wrong entry), right]
    # kept: [wrong, right] -> AP = 1/2, rank1 = 0, INP = 1/2
    res = _one_query([0.0, 0.1], [0, 1], [1, 2])
    assert res.mAP == pytest.approx(0.5)
    assert res.rank1 == 0.0
    assert res.mINP == pytest.approx(0.5)


def test_queries_without_valid_match_are_skipped_and_scores_average() -> None:
    # q0 (pid 1, cam 1): ranked [pid2, pid1 c2, pid3, pid1 c3] = [wrong, right, wrong, right]
    #     AP = (1/2 + 2/4)/2 = 1/2, first at 2, INP = 2/4
    # q1 (pid 3, cam 2): ranked [pid3 c1, pid2, pid1, pid1, pid7, pid0] = [right, wrong x5]
    #     AP = 1/1, first at 1, INP = 1/1
    # q2 (pid 7, cam 1): its only gallery image is in cam 1 -> no valid match, skipped
    # q3 (pid 0, a distractor as query): 0 never matches -> skipped
    # mAP = (1/2 + 1) / 2 = 3/4, rank1 = 1/2, mINP = (1/2 + 1) / 2 = 3/4, num_query = 2
    g_pids = np.array([2, 1, 3, 1, 7, 0])
    g_cams = np.array([2, 2, 1, 3, 1, 2])
    distmat = np.array(
        [
            [0.1, 0.2, 0.3, 0.4, 0.9, 0.9],
            [0.5, 0.6, 0.1, 0.7, 0.8, 0.9],
            [0.5, 0.5, 0.5, 0.5, 0.1, 0.5],
            [0.5, 0.5, 0.5, 0.5, 0.5, 0.1],
        ]
    )
    res = evaluate_rank(distmat, np.array([1, 3, 7, 0]), g_pids, np.array([1, 2, 1, 1]), g_cams)
    assert res.num_query == 2 and res.num_gallery == 6
    assert res.mAP == pytest.approx(0.75)
    assert res.rank1 == pytest.approx(0.5)
    assert res.mINP == pytest.approx(0.75)
    assert res.cmc.shape == (50,)
    np.testing.assert_allclose(res.cmc[:3], [0.5, 1.0, 1.0])
    pct = res.as_percent()
    assert pct == {
        "mAP": 75.0,
        "rank1": 50.0,
        "rank5": 100.0,
        "rank10": 100.0,
        "mINP": 75.0,
        "num_query": 2,
        "num_gallery": 6,
    }


def test_ties_keep_gallery_order() -> None:
    # all distances equal: a stable sort keeps gallery order [wrong, right] -> rank1 = 0
    res = _one_query([0.5, 0.5], [2, 1], [2, 2])
    assert res.rank1 == 0.0 and res.mAP == pytest.approx(0.5)


def test_bad_inputs() -> None:
    ok = (np.array([1]), np.array([1, 2]), np.array([1]), np.array([2, 2]))
    with pytest.raises(ReidTraceError, match="no query has a valid match"):
        evaluate_rank(np.zeros((1, 2)), np.array([5]), *ok[1:])
    with pytest.raises(ReidTraceError, match="nothing to evaluate"):
        evaluate_rank(np.zeros((0, 2)), np.array([]), ok[1], np.array([]), ok[3])
    with pytest.raises(ReidTraceError, match="g_pids"):
        evaluate_rank(np.zeros((1, 2)), ok[0], np.array([1, 2, 3]), ok[2], ok[3])
    with pytest.raises(ReidTraceError, match="NaN"):
        evaluate_rank(np.array([[np.nan, 0.0]]), *ok)
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rank(np.zeros(2), *ok)
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_rank(np.zeros((1, 2)), *ok, max_rank=0)


def test_cosine_distmat() -> None:
    q = np.array([[1.0, 0.0], [0.0, 3.0]])
    g = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    d = cosine_distmat(q, g)
    assert d.dtype == np.float32 and d.shape == (2, 3)
    s = np.sqrt(0.5)
    np.testing.assert_allclose(d, [[0, 1 - s, 1], [1, 1 - s, 2]], atol=1e-6)
    with pytest.raises(ReidTraceError, match="dim"):
        cosine_distmat(q, np.ones((2, 3)))


def _random_case(
    seed: int, num_q: int = 40, num_g: int = 300, num_ids: int = 30, num_cams: int = 6
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, num_ids + 1, num_q)
    g_pids = rng.integers(0, num_ids + 1, num_g)  # 0 = distractors
    q_cams = rng.integers(1, num_cams + 1, num_q)
    g_cams = rng.integers(1, num_cams + 1, num_g)
    distmat = rng.random((num_q, num_g)).astype(np.float32)
    distmat -= 0.3 * (q_pids[:, None] == g_pids[None, :])  # make it better than chance
    return distmat, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_torchreid(seed: int) -> None:
    pytest.importorskip("torchreid")
    from torchreid.reid.metrics.rank import evaluate_rank as tr_eval

    distmat, q_pids, g_pids, q_cams, g_cams = _random_case(seed)
    tr_cmc, tr_map = tr_eval(distmat, q_pids, g_pids, q_cams, g_cams, 50, use_cython=False)
    res = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    assert res.mAP == pytest.approx(float(tr_map), abs=1e-6)
    np.testing.assert_allclose(res.cmc, tr_cmc, atol=1e-6)
    assert res.rank1 == pytest.approx(float(tr_cmc[0]), abs=1e-6)
    assert res.rank10 == pytest.approx(float(tr_cmc[9]), abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_junk_equals_torchreid_without_junk(seed: int) -> None:
    # torchreid's loaders drop junk images before evaluating; ignoring them must be the same
    pytest.importorskip("torchreid")
    from torchreid.reid.metrics.rank import evaluate_rank as tr_eval

    distmat, q_pids, g_pids, q_cams, g_cams = _random_case(100 + seed)
    junk = np.random.default_rng(seed).random(len(g_pids)) < 0.2
    g_pids = np.where(junk, -1, g_pids)
    keep = ~junk
    tr_cmc, tr_map = tr_eval(
        distmat[:, keep], q_pids, g_pids[keep], q_cams, g_cams[keep], 50, use_cython=False
    )
    res = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams)
    assert res.mAP == pytest.approx(float(tr_map), abs=1e-6)
    np.testing.assert_allclose(res.cmc, tr_cmc, atol=1e-6)


def test_large_case_runs_in_chunks() -> None:
    distmat, q_pids, g_pids, q_cams, g_cams = _random_case(7, 2000, 3000, 500, 6)
    res = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams)
    assert 0 < res.num_query <= 2000
    assert 0.0 < res.mINP <= 1.0 and 0.0 < res.mAP <= 1.0
    assert np.all(np.diff(res.cmc) >= 0)
