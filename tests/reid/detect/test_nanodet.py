"""The bundled NanoDet: finds people in rendered and real footage; INT8 agrees with float.

Thresholds are set below what was measured (docs/detectors.md) so that the tests catch a broken
decoder, preprocessing or weights file, not the last point of recall.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid.boxes import box_iou
from reid.detect import NanoDetDetector, create_detector
from reid.detect.nanodet import DEFAULT_PRECISION, WEIGHTS

from .conftest import pets_counts, read_frames, rendered_counts


def test_default_is_the_bundled_int8_model() -> None:
    det = create_detector("nanodet")
    assert isinstance(det, NanoDetDetector)
    assert det.precision == DEFAULT_PRECISION == "int8"
    assert det.input_hw == (416, 416)
    for path in WEIGHTS.values():
        assert path.stat().st_size < 10_000_000  # shipped in the wheel: keep it small


def test_finds_big_visible_people_in_a_rendered_world(tiny_world: Path) -> None:
    tp, fp, total = rendered_counts(create_detector("nanodet"), tiny_world)
    assert total >= 15, "the tiny world changed: too few big, visible people to score"
    # measured: 18 of 27 (0.67), no false boxes; see docs/detectors.md on rendered people
    assert tp / total >= 0.5, f"found {tp} of {total} big, visible rendered people"
    assert tp / max(tp + fp, 1) >= 0.8


def test_finds_people_in_real_footage(pets_video: Path) -> None:
    tp, fp, total = pets_counts(create_detector("nanodet"), pets_video)
    assert total == 33
    assert tp / total >= 0.7, f"found {tp} of {total} people on PETS"
    assert tp / max(tp + fp, 1) >= 0.85, f"{fp} false boxes on PETS"


def _agreement(frames: list[np.ndarray]) -> tuple[int, int]:
    """(float boxes, of them with an INT8 box at IoU >= 0.8), INT8 at a lower threshold so a
    score shift of a few hundredths at the threshold does not count as a different box."""
    flt = create_detector("nanodet-float")
    int8 = create_detector("nanodet-int8", score_threshold=flt.score_threshold - 0.1)
    total = agree = 0
    for idx, frame in enumerate(frames):
        a, b = flt.detect(frame, idx), int8.detect(frame, idx)
        total += len(a)
        if len(a) and len(b):
            agree += int((box_iou(a.xyxy, b.xyxy).max(axis=1) >= 0.8).sum())
    return total, agree


def test_int8_agrees_with_float_on_rendered_frames(tiny_world: Path) -> None:
    frames = read_frames(tiny_world / "cam1" / "video.mp4", set(range(0, 80, 5)))
    total, agree = _agreement(list(frames.values()))
    assert total >= 5
    assert agree / total >= 0.85, f"INT8 matched {agree} of {total} float boxes"


def test_int8_agrees_with_float_on_real_frames(pets_video: Path) -> None:
    frames = read_frames(pets_video, set(range(0, 400, 40)))
    total, agree = _agreement(list(frames.values()))
    assert total >= 30
    assert agree / total >= 0.9, f"INT8 matched {agree} of {total} float boxes"
