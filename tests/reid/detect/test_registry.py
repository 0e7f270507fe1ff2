"""create_detector: names, options, and every detector's output contract on one frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid.detect import centernet, create_detector, detector_options, list_detectors
from reid.detect.nanodet import WEIGHTS
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.protocols import Detector
from tests.conftest import require_yolox_nano


def test_bad_name_lists_the_valid_ones() -> None:
    with pytest.raises(ReidTraceError, match="unknown detector 'yolo9'") as err:
        create_detector("yolo9")
    for name in ("nanodet", "nanodet-float", "onnx", "hog", "mog2", "oracle"):
        assert name in (err.value.hint or "")


def test_bad_and_missing_options_list_the_valid_ones() -> None:
    with pytest.raises(ReidTraceError, match="unknown options") as err:
        create_detector("hog", upscael=2)
    assert "upscale" in (err.value.hint or "")
    with pytest.raises(ReidTraceError, match=r"missing options \['gt_path'\]"):
        create_detector("oracle")
    with pytest.raises(ReidTraceError, match="fixes"):
        create_detector("nanodet-float", precision="int8")


def test_detector_options_are_what_create_detector_accepts() -> None:
    nanodet = detector_options("nanodet")
    assert {"threads", "score_threshold"} <= set(nanodet) and "precision" not in nanodet  # fixed
    assert "threads" not in detector_options("oracle")
    assert "gt_path" in detector_options("Oracle")  # names are normalised as in create_detector
    create_detector("nanodet", threads=1)  # every listed option is accepted
    with pytest.raises(ReidTraceError, match="unknown detector"):
        detector_options("yolo9")


def _kwargs(name: str, tmp_path: Path) -> dict:
    if name == "onnx":
        return {"path": WEIGHTS["float"], "format": "nanodet"}
    if name == "oracle":
        gt = tmp_path / "gt.txt"
        gt.write_text("5,1,200,100,30,100,1,1,1\n5,2,470,300,40,80,1,1,0.5\n4,1,0,0,5,5,1,1,1\n")
        return {"gt_path": gt}
    if name == "mog2":
        return {"warmup": 2}
    if name == "yolox":
        return {"path": require_yolox_nano(), "input_size": (384, 480)}
    return {}


@pytest.mark.parametrize("name", list_detectors())
def test_every_detector_returns_valid_detections(
    name: str, tmp_path: Path, street_frame: np.ndarray
) -> None:
    if name == "centernet" and not centernet.WEIGHTS["float"].is_file():
        with pytest.raises(ReidTraceError, match="not shipped") as err:
            create_detector(name)
        assert "convert_centernet.py" in (err.value.hint or "")
        return
    det = create_detector(name, **_kwargs(name, tmp_path))
    assert isinstance(det, Detector)
    moved = street_frame.copy()
    moved[:, 5:] = street_frame[:, :-5]  # something moves, for background subtraction
    dets = Detections.empty()
    for idx, frame in enumerate([street_frame, street_frame, street_frame, moved, moved]):
        dets = det.detect(frame, idx)
        assert isinstance(dets, Detections)
    h, w = street_frame.shape[:2]
    assert dets.xyxy.dtype == np.float32 and dets.confidence.dtype == np.float32
    assert np.all(dets.frame_idx == 4)
    assert np.all(dets.xyxy[:, :2] >= 0) and np.all(dets.xyxy[:, 2] <= w)
    assert np.all(dets.xyxy[:, 3] <= h)
    assert np.all(dets.xyxy[:, 2:] > dets.xyxy[:, :2])
    assert np.all((dets.confidence >= 0) & (dets.confidence <= 1))
    if name == "oracle":
        np.testing.assert_allclose(dets.xyxy, [[200, 100, 230, 200], [470, 300, 480, 360]])


def test_frames_of_the_wrong_shape_are_refused() -> None:
    det = create_detector("hog")
    with pytest.raises(ReidTraceError, match="image array"):
        det.detect(np.zeros((2, 3, 4, 5), np.uint8), 0)
    gray = det.detect(np.zeros((120, 160), np.uint8), 0)  # grey frames are fine
    assert len(gray) == 0
