"""User-supplied ONNX files: input validation, format mismatch, letterbox round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid.detect import OnnxDetector, create_detector
from reid.errors import ReidTraceError

onnx = pytest.importorskip("onnx", reason="building test models needs the onnx package")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _save(path: Path, input_shape: list, outputs: dict[str, np.ndarray]) -> Path:
    """A model whose outputs are constants (plus 0 * mean(input), so the input is used)."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), name + "_c"))
        nodes.append(helper.make_node("Add", [name + "_c", "z"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        outs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _yolo_out() -> np.ndarray:
    out = np.zeros((1, 2, 85), np.float32)
    out[0, 0, :6] = [32, 32, 16, 24, 1.0, 0.9]  # in input pixels of the 64x64 input
    return out


def test_yolo_model_boxes_come_back_in_frame_pixels(tmp_path: Path) -> None:
    path = _save(tmp_path / "yolo.onnx", [1, 3, 64, 64], {"out": _yolo_out()})
    det = create_detector("onnx", path=path, format="yolo")
    frame = np.zeros((64, 128, 3), np.uint8)  # letterboxed: scale 0.5, 16 px bars top/bottom
    dets = det.detect(frame, 7)
    np.testing.assert_allclose(dets.xyxy, [[48, 8, 80, 56]], atol=1e-4)
    np.testing.assert_allclose(dets.confidence, [0.9], rtol=1e-6)
    assert dets.frame_idx.tolist() == [7]


def test_dynamic_input_takes_input_size(tmp_path: Path) -> None:
    path = _save(tmp_path / "dyn.onnx", ["batch", 3, "h", "w"], {"out": _yolo_out()})
    det = OnnxDetector(path, "yolo", input_size=64)
    assert det.input_hw == (64, 64)
    assert OnnxDetector(path, "yolo").input_hw == (640, 640)
    with pytest.raises(ReidTraceError, match="multiple of 32"):
        OnnxDetector(path, "yolo", input_size=(100, 100))


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ([1, 416, 416], "rank 3"),
        ([1, 5, 64, 64], "colour channels"),
        ([4, 3, 64, 64], "batch of 4"),
    ],
)
def test_bad_input_shapes_say_what_is_wrong(tmp_path: Path, shape: list, match: str) -> None:
    path = _save(tmp_path / "bad.onnx", shape, {"out": _yolo_out()})
    with pytest.raises(ReidTraceError, match=match) as err:
        create_detector("onnx", path=path, format="yolo")
    assert "[1, 3, H, W]" in (err.value.hint or "")


def test_outputs_that_do_not_fit_the_format(tmp_path: Path) -> None:
    path = _save(tmp_path / "yolo.onnx", [1, 3, 64, 64], {"out": _yolo_out()})
    with pytest.raises(ReidTraceError, match="do not fit format='centernet'"):
        create_detector("onnx", path=path, format="centernet")
    with pytest.raises(ReidTraceError, match="unknown detector output format"):
        create_detector("onnx", path=path, format="ssd")


def test_centernet_model_by_output_names(tmp_path: Path) -> None:
    hm = np.zeros((1, 1, 16, 16), np.float32)
    hm[0, 0, 8, 4] = 0.9
    wh = np.zeros((1, 2, 16, 16), np.float32)
    wh[0, :, 8, 4] = [2, 6]
    reg = np.zeros((1, 2, 16, 16), np.float32)
    # deliberately not in CenterNet's head order: found by name
    path = _save(tmp_path / "cn.onnx", [1, 3, 64, 64], {"reg": reg, "hm": hm, "wh": wh})
    det = create_detector("onnx", path=path, format="centernet", num_classes=1)
    dets = det.detect(np.zeros((64, 64, 3), np.uint8), 0)
    np.testing.assert_allclose(dets.xyxy, [[12, 20, 20, 44]], atol=1e-4)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ReidTraceError, match="cannot load"):
        create_detector("onnx", path=path)
    with pytest.raises(ReidTraceError, match="does not exist"):
        create_detector("onnx", path=tmp_path / "missing.onnx")
