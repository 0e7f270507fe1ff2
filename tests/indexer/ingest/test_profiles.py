"""Per-detector tracking profiles: applied by detector family, and given settings win."""

from types import MappingProxyType

import pytest

from indexer.ingest import IngestConfig
from reid.errors import ReidTraceError
from reid.track import config as track_config
from reid.track.config import PROFILES, TrackerConfig, detector_profile


@pytest.fixture
def profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {"yolox": MappingProxyType({"n_init": 5, "low_score": None, "stitch": True})}
    monkeypatch.setattr(track_config, "PROFILES", MappingProxyType(table))


def test_every_profile_names_real_settings() -> None:
    known = TrackerConfig.names() | {"low_score"}
    for family, row in PROFILES.items():
        assert set(row) <= known, family
        cfg, _ = IngestConfig().for_detector(family)
        cfg.validate()


def test_profile_by_family(profiles: None) -> None:
    assert detector_profile("yolox") == ("yolox", {"n_init": 5, "low_score": None, "stitch": True})
    assert detector_profile("YOLOX_tiny")[0] == "yolox"
    assert detector_profile("yoloxx") == (None, {})
    assert detector_profile("hog") == (None, {})
    with pytest.raises(ReidTraceError):
        detector_profile(3)  # type: ignore[arg-type]


def test_profile_applies_to_the_defaults(profiles: None) -> None:
    cfg, note = IngestConfig().for_detector("yolox")
    assert cfg.tracker.n_init == 5 and cfg.tracker.stitch and cfg.low_score is None
    assert note.startswith("tracker: yolox profile") and "n_init=5" in note
    same, note = IngestConfig().for_detector("hog")
    assert same == IngestConfig() and "defaults" in note


def test_given_settings_win_over_the_profile(profiles: None) -> None:
    # given on the command line (from_settings), even when equal to the generic default
    cfg, note = IngestConfig.from_settings(n_init=3, low_score=0.15).for_detector("yolox")
    assert cfg.tracker.n_init == 3 and cfg.low_score == 0.15 and cfg.tracker.stitch
    assert "kept as given: low_score, n_init" in note
    # set in code: differs from the generic default
    coded = IngestConfig(low_score=0.3, tracker=TrackerConfig(n_init=4))
    cfg, _ = coded.for_detector("yolox")
    assert cfg.tracker.n_init == 4 and cfg.low_score == 0.3 and cfg.tracker.stitch


def test_the_reid_cue_widens_the_appearance_gates(profiles: None) -> None:
    cfg, note = IngestConfig(appearance="reid").for_detector("yolox")
    want = track_config.CUE_PROFILES["reid"]
    assert cfg.tracker.max_cosine_distance == want["max_cosine_distance"] > 0.2
    assert cfg.tracker.n_init == 5  # the detector's profile still applies
    assert "yolox profile + reid cue" in note
    alone, note = IngestConfig(appearance="reid").for_detector("hog")
    assert alone.tracker.stitch_look == want["stitch_look"] and note.startswith("tracker: reid cue")
    given, note = IngestConfig.from_settings(
        appearance="reid", max_cosine_distance=0.2
    ).for_detector("hog")
    assert given.tracker.max_cosine_distance == 0.2 and "kept as given: max_cosine_distance" in note
    hist, _ = IngestConfig().for_detector("hog")
    assert hist.tracker.max_cosine_distance == TrackerConfig().max_cosine_distance
