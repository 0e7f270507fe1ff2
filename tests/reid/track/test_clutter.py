"""Static clutter: a box that never moves stops being tracked, a person who stops keeps theirs."""

from __future__ import annotations

import numpy as np
import pytest

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.track import DeepSortTracker
from reid.track.clutter import ClutterMap
from tests.reid.track.test_state import _saved, frame

CONE = [100.0, 120.0, 112.0, 136.0]  # a small box that stands in every frame
LEARN = 40  # clutter_frames of these tests: the cone is scenery after 40 frames
# n_init 3: the scenes confirm a track after three boxes (the clutter map is what is tested)
SETTINGS = {
    "high_score": 0.5,
    "clutter": "all",
    "clutter_frames": LEARN,
    "max_age": 10,
    "n_init": 3,
}


def _scene(
    n_frames: int, *, walker: bool = True, stop_at: int = 30, weak_cone: bool = False
) -> list[Detections]:
    """The cone in every frame, and a walker who enters from the left, walks ``stop_at`` frames
    and then stands still for the rest of the stream, far from the cone. Both look the same all
    the time (plus noise). The cone scores strong on three of four frames, or with
    ``weak_cone`` weak but for three frames in a row every 50 (two of PETS' cones: strong on
    2 % of their frames)."""
    rng = np.random.default_rng(0)
    cone_look, walker_look = rng.normal(size=16), rng.normal(size=16)
    out = []
    for k in range(n_frames):
        boxes = [np.add(CONE, rng.normal(0, 0.4, 4))]
        scores = [0.3 if (k % 50 > 2 if weak_cone else k % 4 == 3) else 0.7]
        looks = [cone_look + rng.normal(0, 0.05, 16)]
        if walker:
            x = 200.0 + 4.0 * min(k, stop_at) + rng.normal(0, 0.5)
            boxes.append([x, 150.0, x + 30.0, 230.0])
            scores.append(0.9)
            looks.append(walker_look + rng.normal(0, 0.05, 16))
        out.append(frame(k, boxes, scores, looks))
    return out


def _on_cone(rows: Detections) -> np.ndarray:
    return np.abs(rows.xyxy[:, 0] - CONE[0]) < 5


def test_a_box_that_never_moves_stops_being_tracked_and_starts_no_track() -> None:
    """Off, the cone is one track from the third frame to the last; on, its track loses its
    boxes once the place is learned (after LEARN frames), dies after max_age, and no track
    starts there again however often the cone is detected strongly."""
    stream = _scene(300, walker=False)
    plain = DeepSortTracker(high_score=0.5, clutter="off", n_init=3)
    off = Detections.merge([plain.update(d) for d in stream])
    assert off.frame_idx.max() == 299 and _on_cone(off).all()

    tracker = DeepSortTracker(**SETTINGS)
    rows = Detections.merge([tracker.update(d) for d in stream])
    assert rows.frame_idx.max() < LEARN + 1
    assert len(np.unique(rows.track_id)) == 1
    assert tracker.clutter is not None and len(tracker.clutter.scenery_boxes) >= 1


def test_weak_mode_starves_a_cone_seen_mostly_weak() -> None:
    """The default mode refuses only weak boxes on scenery to tracks that never moved (and
    starts no track there): a cone detected weakly but for a strong moment every 5 s is one
    long track without it, and none once its place is learned."""
    stream = _scene(300, walker=False, weak_cone=True)
    plain = DeepSortTracker(high_score=0.5, clutter="off", n_init=3)
    off = Detections.merge([plain.update(d) for d in stream])
    assert off.frame_idx.max() == 299 and len(np.unique(off.track_id)) == 1
    weak = DeepSortTracker(**{**SETTINGS, "clutter": "weak"})
    assert DeepSortTracker().config.clutter == "weak"
    rows = Detections.merge([weak.update(d) for d in stream])
    assert rows.frame_idx.max() < LEARN + 1 and len(np.unique(rows.track_id)) == 1


@pytest.mark.parametrize("mode", ["weak", "all"])
def test_a_person_who_walks_in_and_stops_keeps_their_track(mode: str) -> None:
    """The walker stands still for 270 frames, far longer than the cone took to be learned:
    their track moved before they stopped, so it keeps every box, one id from start to end,
    while the cone's rows stop."""
    stream = _scene(300, stop_at=30, weak_cone=mode == "weak")
    tracker = DeepSortTracker(**{**SETTINGS, "clutter": mode})
    rows = Detections.merge([tracker.update(d) for d in stream])
    person = rows[~_on_cone(rows)]
    assert len(np.unique(person.track_id)) == 1
    assert np.array_equal(np.sort(person.frame_idx), np.arange(300))
    assert rows[_on_cone(rows)].frame_idx.max() < LEARN + 1


def test_a_standing_persons_place_never_becomes_scenery() -> None:
    """Where a moving track stopped is marked as brought there: however long they stand, their
    anchors are not scenery, and a track lost and restarted there is still fed."""
    tracker = DeepSortTracker(**SETTINGS)
    for d in _scene(300, stop_at=30):
        tracker.update(d)
    assert tracker.clutter is not None
    scenery = tracker.clutter.scenery_boxes
    assert len(scenery) and (np.abs(scenery[:, 0] - CONE[0]) < 5).all()


def test_the_clutter_map_survives_a_saved_state_exactly() -> None:
    """Stop every 23 frames, save through numpy's file format, continue in a new tracker: the
    rows are those of one uninterrupted run, and the map's arrays are in the state."""
    stream = _scene(200, stop_at=25)
    whole = DeepSortTracker(**SETTINGS)
    expected = Detections.merge([whole.update(d) for d in stream])
    tracker, rows = DeepSortTracker(**SETTINGS), []
    for k, d in enumerate(stream):
        if k and k % 23 == 0:
            state = _saved(tracker.get_state())
            assert {"clutter.box", "clutter.scenery", "clutter.brought"} <= set(state)
            tracker = DeepSortTracker(**SETTINGS)
            tracker.set_state(state)
        rows.append(tracker.update(d))
    got = Detections.merge(rows)
    for col in ("xyxy", "confidence", "frame_idx", "track_id"):
        assert getattr(got, col).tobytes() == getattr(expected, col).tobytes(), col
    assert whole.clutter is not None and tracker.clutter is not None
    for k, v in whole.clutter.get_state().items():
        assert v.tobytes() == tracker.clutter.get_state()[k].tobytes(), k


def test_off_has_no_map_and_no_state_of_its_own() -> None:
    tracker = DeepSortTracker(clutter="off", n_init=3)
    assert tracker.clutter is None
    for d in _scene(20):
        tracker.update(d)
    assert not any(k.startswith("clutter.") for k in tracker.get_state())


@pytest.mark.parametrize(
    "bad",
    [{"clutter_frames": 0}, {"clutter_iou": 0.0}, {"clutter_look": 3.0}, {"clutter_move": 0}],
)
def test_bad_clutter_settings_say_which(bad: dict) -> None:
    with pytest.raises(ReidTraceError, match=rf"setting\(s\) {next(iter(bad))}:"):
        DeepSortTracker(clutter="all", **bad)
    with pytest.raises(ReidTraceError, match="clutter must be one of off, weak, all"):
        DeepSortTracker(clutter="yes")


def test_the_map_refuses_a_change_of_appearance_cue() -> None:
    cmap = ClutterMap(still_iou=0.6, still_look=0.2, frames=5, forget=10)
    box = np.asarray([CONE], np.float32)
    cmap.learn(0, box, np.ones((1, 8)), np.zeros(1, bool))
    with pytest.raises(ReidTraceError, match="one appearance cue"):
        cmap.learn(1, box, np.ones((1, 4)), np.zeros(1, bool))
