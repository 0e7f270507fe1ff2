"""CenterNet: finds people in real and rendered footage, through the ``boxes`` format.

Its weights are built locally (``deploy/models/convert_centernet.py``), never shipped, so
these tests run where they were built and skip elsewhere. Thresholds sit below what was
measured (docs/detectors.md: 29 of 33 PETS people, 1 false box), so the tests catch a broken
preprocessing (it wants RGB in 0..255, not /255), letterbox or weights file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reid.detect import CenterNetDetector, create_detector
from reid.detect.centernet import WEIGHTS

from .conftest import pets_counts, read_frames, rendered_counts

pytestmark = pytest.mark.skipif(
    not WEIGHTS["float"].is_file(),
    reason="CenterNet is not shipped; build it with deploy/models/convert_centernet.py",
)


def test_bundled_model_contract() -> None:
    det = create_detector("centernet")
    assert isinstance(det, CenterNetDetector)
    assert det.input_hw == (512, 512) and det.format == "boxes"
    assert WEIGHTS.path(det.precision).stat().st_size < 10_000_000


def test_finds_people_in_real_footage(pets_video: Path) -> None:
    tp, fp, total = pets_counts(create_detector("centernet"), pets_video)
    assert tp / total >= 0.75, f"found {tp} of {total} people on PETS"
    assert tp / max(tp + fp, 1) >= 0.85, f"{fp} false boxes on PETS"


def test_finds_big_visible_people_in_a_rendered_world(tiny_world: Path) -> None:
    tp, fp, total = rendered_counts(create_detector("centernet"), tiny_world)
    assert total >= 15, "the tiny world changed: too few big, visible people to score"
    assert tp / total >= 0.6, f"found {tp} of {total} big, visible rendered people"
    assert tp / max(tp + fp, 1) >= 0.8


def test_wrong_preprocessing_would_find_nobody(pets_video: Path) -> None:
    """The model wants 0..255 input; fed /255 (the NanoDet convention) it finds nothing, so a
    passing PETS test above proves the scale is right."""
    det = CenterNetDetector()
    det._scale = 1 / 255
    frame = next(iter(read_frames(pets_video, {170}).values()))
    assert len(det.detect(frame, 170)) == 0
