"""The pipeline hands the camera's ground homography to the tracker (ground association)."""

from pathlib import Path

import pytest

from indexer.ingest import IngestConfig
from indexer.ingest.sources import Source
from indexer.ingest.stages import Stages
from reid.video import VideoInfo

H = [[0.03, 0.035, 20.0], [-0.033, 0.0003, 28.0], [0.0, 0.0072, 1.0]]


def _info() -> VideoInfo:
    return VideoInfo(Path("v.mp4"), 10.0, 480, 360, 100, "x", False)


@pytest.fixture
def stages_for():
    made: list[Stages] = []

    def build(source: Source, **settings: object) -> Stages:
        made.append(Stages(IngestConfig.from_settings(detector="hog", **settings), source))
        return made[-1]

    yield build
    for s in made:
        s.close()


def test_a_camera_with_a_homography_gets_a_ground_tracker_when_asked(stages_for) -> None:
    src = Source(Path("v.mp4"), "cam1", None, homography=H)
    tracker = stages_for(src, ground_cue=True).new_tracker(src, _info())
    assert tracker.uses_ground and tracker._motion.image_height == 360


def test_a_camera_without_one_keeps_the_image_tracker(stages_for) -> None:
    src = Source(Path("v.mp4"), "cam1", None)
    assert not stages_for(src, ground_cue=True).new_tracker(src, _info()).uses_ground


def test_the_ground_cue_is_off_by_default(stages_for) -> None:
    src = Source(Path("v.mp4"), "cam1", None, homography=H)
    assert not stages_for(src).new_tracker(src, _info()).uses_ground


def test_a_stride_widens_the_gap_the_tracker_bridges(stages_for) -> None:
    src = Source(Path("v.mp4"), "cam1", None)
    tracker = stages_for(src, detect_stride=15, max_gap=10).new_tracker(src, _info())
    assert tracker.config.max_gap == 14
