"""Track score (``min_track_score``): boxes of tracks the detector only half believes are held."""

import numpy as np
import pytest

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.track import DeepSortTracker


def _walker(k: int, x: float, score: float, look: np.ndarray) -> Detections:
    return Detections(
        xyxy=np.array([[x + 3 * k, 20, x + 3 * k + 30, 100]], np.float32),
        confidence=np.array([score], np.float32),
        frame_idx=np.array([k]),
        embedding=(look / np.linalg.norm(look))[None].astype(np.float32),
    )


def _run(tracker: DeepSortTracker, scores: list[list[float]]) -> Detections:
    """Walkers 200 px apart, one confidence per walker per frame (NaN: not seen)."""
    looks = np.eye(8)[: len(scores[0])] + 0.1
    rows = []
    for k, row in enumerate(scores):
        parts = [_walker(k, 200.0 * p, s, looks[p]) for p, s in enumerate(row) if s == s]
        dets = Detections.merge(parts) if parts else Detections.empty()
        if not parts:
            dets.embedding = np.zeros((0, 8), np.float32)
        rows.append(tracker.update(dets))
    return Detections.merge(rows)


def test_a_weak_track_is_never_stored_and_a_confident_one_is() -> None:
    scores = [[0.9, 0.3]] * 20
    both = _run(DeepSortTracker(n_init=3), scores)
    assert len(np.unique(both.track_id)) == 2  # off (the default): every confirmed track
    rows = _run(DeepSortTracker(n_init=3, min_track_score=0.5), scores)
    assert len(rows) == 20 and set(rows.confidence.tolist()) == {np.float32(0.9)}


def test_held_boxes_are_emitted_once_the_mean_score_is_reached() -> None:
    # 6 weak boxes then confident ones: the mean reaches 0.5 at the 9th box (1.8 + 2.7 = 4.5)
    scores = [[0.3]] * 6 + [[0.9]] * 10
    tracker = DeepSortTracker(n_init=3, min_track_score=0.5)
    looks = np.eye(8)[:1] + 0.1
    sizes = [len(tracker.update(_walker(k, 0.0, s[0], looks[0]))) for k, s in enumerate(scores)]
    assert sizes[:8] == [0] * 8 and sizes[8] == 9 and sizes[9:] == [1] * 7
    rows = _run(DeepSortTracker(n_init=3, min_track_score=0.5), scores)
    assert rows.frame_idx.tolist() == list(range(16)) and len(np.unique(rows.track_id)) == 1


def test_a_track_that_turns_weak_stops_being_stored() -> None:
    # confident for 6 frames, then weak until it leaves: the mean stays >= 0.5 for 9 weak boxes
    # (5.4 + 0.25 * 9 = 7.65 >= 0.5 * 15) and falls under it with the 10th (7.9 < 8); the held
    # boxes die with the track
    scores = [[0.9]] * 6 + [[0.25]] * 14 + [[float("nan")]] * 40
    rows = _run(DeepSortTracker(n_init=3, min_track_score=0.5, max_age=5), scores)
    assert rows.frame_idx.tolist() == list(range(15))
    off = _run(DeepSortTracker(n_init=3, max_age=5), scores)
    assert off.frame_idx.tolist() == list(range(20))


def test_min_track_score_must_be_a_score() -> None:
    for bad in (-0.1, 1.0):
        with pytest.raises(ReidTraceError, match="min_track_score"):
            DeepSortTracker(min_track_score=bad)
