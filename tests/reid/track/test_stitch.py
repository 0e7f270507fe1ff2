"""Tracklet stitching (``TrackerConfig.stitch``): a broken track is re-linked, people are not."""

import numpy as np
import pytest

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.track import create_tracker


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _look_at(base: np.ndarray, distance: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at cosine distance ``distance`` from the unit vector ``base``."""
    other = rng.normal(size=base.shape)
    other = _unit(other - other @ base * base)
    cos = 1.0 - distance
    return _unit(cos * base + np.sqrt(1 - cos**2) * other)


def _frame(k: int, people: list[tuple[float, float, np.ndarray]]) -> Detections:
    """One frame: each person ``(x, speed, look)`` as a 30x80 box walking along y = 40."""
    if not people:
        d = Detections.empty()
        d.embedding = np.zeros((0, 16), np.float32)
        return d
    return Detections(
        xyxy=np.array([[x + v * k, 40, x + v * k + 30, 120] for x, v, _ in people], np.float32),
        confidence=np.full(len(people), 0.9, np.float32),
        frame_idx=np.full(len(people), k),
        embedding=np.stack([e for _, _, e in people]),
    )


def _broken_walk(stitch: bool, state_at: int | None = None) -> Detections:
    """One walker, unseen for frames 15-22 (behind a post), whose look then changed by 0.25
    (light): beyond the appearance gate (0.2), so DeepSORT starts a new track."""
    rng = np.random.default_rng(3)
    look = _unit(rng.normal(size=16))
    after = _look_at(look, 0.25, rng)
    tracker = create_tracker("deepsort", stitch=stitch)
    rows = []
    for k in range(40):
        if state_at is not None and k == state_at:  # a killed run resumes from the saved state
            state = tracker.get_state()
            tracker = create_tracker("deepsort", stitch=stitch)
            tracker.set_state(state)
        people = [] if 15 <= k < 23 else [(10.0, 4.0, look if k < 15 else after)]
        rows.append(tracker.update(_frame(k, people)))
    return Detections.merge(rows)


def test_a_broken_track_is_relinked_under_its_first_number() -> None:
    plain = _broken_walk(stitch=False)
    assert len(set(plain.track_id.tolist())) == 2  # the break the stitching is for
    out = _broken_walk(stitch=True)
    assert set(out.track_id.tolist()) == {1}
    # each frame once, and the stitched gap is not filled (unlike a gap inside one track)
    assert sorted(out.frame_idx.tolist()) == [k for k in range(40) if not 15 <= k < 23]


@pytest.mark.parametrize("state_at", [18, 24])
def test_stitching_survives_a_resume(state_at: int) -> None:
    full = _broken_walk(stitch=True)
    resumed = _broken_walk(stitch=True, state_at=state_at)
    order = np.lexsort((full.track_id, full.frame_idx))
    again = np.lexsort((resumed.track_id, resumed.frame_idx))
    assert np.array_equal(full.track_id[order], resumed.track_id[again])
    assert np.array_equal(full.xyxy[order], resumed.xyxy[again])


def test_two_people_crossing_are_never_merged() -> None:
    """A walks right, B walks left and looks like A (distance 0.1); A is hidden while they
    cross (frames 20-27) and comes out looking a little different (0.25: a new track). The
    stitching gives A back their number; B's track, seen all along, keeps its own."""
    rng = np.random.default_rng(5)
    a = _unit(rng.normal(size=16))
    b, a_after = _look_at(a, 0.1, rng), _look_at(a, 0.25, rng)
    for stitch, a_numbers in ((False, 2), (True, 1)):
        tracker = create_tracker("deepsort", stitch=stitch)
        rows = []
        for k in range(48):
            people = [(300.0, -5.0, b)]
            if not 20 <= k < 28:
                people.append((60.0, 5.0, a if k < 20 else a_after))
            rows.append(tracker.update(_frame(k, people)))
        out = Detections.merge(rows)
        out = out[out.frame_idx != 24]  # where both stand on the same spot
        is_b = np.isclose(out.xyxy[:, 0], 300 - 5 * out.frame_idx)
        b_ids, a_ids = set(out.track_id[is_b].tolist()), set(out.track_id[~is_b].tolist())
        assert len(b_ids) == 1 and not b_ids & a_ids
        assert len(a_ids) == a_numbers


def test_stitching_never_joins_tracks_seen_at_the_same_time() -> None:
    """The new track began while the lost one was still seen: two people, however alike."""
    rng = np.random.default_rng(7)
    look = _unit(rng.normal(size=16))
    twin = _look_at(look, 0.25, rng)
    tracker = create_tracker("deepsort", stitch=True, stitch_look=0.5, stitch_reach=5.0)
    rows = []
    for k in range(30):
        people = [(10.0, 4.0, look)] if k < 15 else []
        if k >= 13:  # the twin appears two frames before the first person is lost, 60 px on
            people.append((70.0, 4.0, twin))
        rows.append(tracker.update(_frame(k, people)))
    out = Detections.merge(rows)
    assert len(set(out.track_id.tolist())) == 2


def test_bad_stitching_settings() -> None:
    with pytest.raises(ReidTraceError, match="stitch"):
        create_tracker("deepsort", stitch_look=0)
    with pytest.raises(ReidTraceError, match="stitch"):
        create_tracker("deepsort", stitch_speed=-1)
