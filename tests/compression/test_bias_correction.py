"""Bias correction: the mean-output formula is exact, and correcting brings INT8 closer to FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compression.bias_correction import _Conv, _mean_output
from compression.quantize import quantize_onnx
from reid.embed import OnnxEmbedder, read_image


@pytest.mark.parametrize(
    ("groups", "stride", "pads"),
    [(1, 1, (1, 1, 1, 1)), (1, 2, (1, 0, 1, 0)), (6, 1, (1, 1, 1, 1)), (3, 2, (0, 1, 1, 0))],
)
def test_mean_output_matches_a_real_conv(groups: int, stride: int, pads: tuple) -> None:
    """mean over crops and positions of conv(x) == the formula applied to the mean map."""
    rng = np.random.default_rng(groups * 10 + stride)
    x = rng.standard_normal((5, 6, 9, 7)).astype(np.float32)
    w = rng.standard_normal((6, 6 // groups, 3, 3)).astype(np.float32)
    node = helper.make_node(
        "Conv", ["x", "w"], ["y"], group=groups, strides=[stride, stride], pads=list(pads)
    )
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0].mean((0, 2, 3))
    conv = _Conv(
        q=node, fp_input="x", weight=w, bias=np.zeros(6), weight_q=w,
        bias_init=TensorProto(), bias_scale=np.ones(6), strides=(stride, stride),
        pads=pads, group=groups,
    )  # fmt: skip
    got = _mean_output(x.mean(0), w, conv)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_bias_correction_moves_only_biases_and_helps(
    tiny_fp32: Path, market: Path, tmp_path: Path
) -> None:
    kw = {"method": "minmax", "num_crops": 16, "check_crops": 16, "fp32_types": "none",
          "threads": 1}  # fmt: skip
    plain, fixed = tmp_path / "plain.onnx", tmp_path / "corrected.onnx"
    r0 = quantize_onnx(tiny_fp32, plain, market, bias_correction=False, **kw)
    r1 = quantize_onnx(tiny_fp32, fixed, market, bias_crops=16, **kw)
    assert r0.bias_corrected == 0 and r1.bias_corrected >= 4  # every INT8 conv
    a, b = onnx.load(str(plain)), onnx.load(str(fixed))
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
    changed = [
        i.name
        for i, j in zip(a.graph.initializer, b.graph.initializer, strict=True)
        if not np.array_equal(numpy_helper.to_array(i), numpy_helper.to_array(j))
    ]
    assert changed and all(
        numpy_helper.to_array(i).dtype == np.int32 for i in b.graph.initializer if i.name in changed
    )
    # closer to FP32 on crops of the test splits, which neither calibration nor correction saw
    paths = sorted((market / "query").glob("*.jpg")) + sorted(
        (market / "bounding_box_test").glob("*.jpg")
    )
    crops = [read_image(p) for p in paths[:32]]
    ref = OnnxEmbedder(tiny_fp32, threads=1).embed_crops(crops)
    err0 = 1 - np.sum(ref * OnnxEmbedder(plain, threads=1).embed_crops(crops), axis=1).mean()
    err1 = 1 - np.sum(ref * OnnxEmbedder(fixed, threads=1).embed_crops(crops), axis=1).mean()
    assert err1 < err0, (err0, err1)
