"""The pipeline hands the camera's ground homography to the tracker (ground association)."""

import pickle
from pathlib import Path

from indexer.ingest.pipeline import IngestConfig, _new_state
from indexer.ingest.sources import Source
from reid.track.ground import GroundDeepSort
from reid.video import VideoInfo

H = [[0.03, 0.035, 20.0], [-0.033, 0.0003, 28.0], [0.0, 0.0072, 1.0]]


def _info() -> VideoInfo:
    return VideoInfo(Path("v.mp4"), 10.0, 480, 360, 100, "x", False)


def test_a_camera_with_a_homography_gets_a_ground_tracker_when_asked() -> None:
    src = Source(Path("v.mp4"), "cam1", None, homography=H)
    state = _new_state(IngestConfig(ground_cue=True), 0.35, src, _info())
    ds = state.tracker._ds.tracker
    assert isinstance(ds, GroundDeepSort) and ds.motion.image_height == 360
    # the tracker is pickled into every chunk checkpoint: it must survive the round trip
    again = pickle.loads(pickle.dumps(state))
    assert isinstance(again.tracker._ds.tracker, GroundDeepSort)


def test_a_camera_without_one_keeps_the_image_tracker() -> None:
    src = Source(Path("v.mp4"), "cam1", None)
    state = _new_state(IngestConfig(ground_cue=True), 0.35, src, _info())
    assert not isinstance(state.tracker._ds.tracker, GroundDeepSort)


def test_the_ground_cue_is_off_by_default() -> None:
    src = Source(Path("v.mp4"), "cam1", None, homography=H)
    state = _new_state(IngestConfig(), 0.35, src, _info())
    assert not isinstance(state.tracker._ds.tracker, GroundDeepSort)
