"""INT8 quantization: features agree with FP32, the file keeps its contract, bad input fails."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from compression.calibration import find_crops, sample_crops
from compression.quantize import layer_types, quantize_onnx, strip_flip_average
from reid.embed import SOURCE_MODEL, OnnxEmbedder, model_identity, read_image
from reid.errors import ReidTraceError


@pytest.fixture(scope="module")
def int8(tiny_fp32: Path, market: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("int8") / "mnv2_int8.onnx"
    report = quantize_onnx(
        tiny_fp32, out, market, method="minmax", num_crops=32, probe_batch=4, probe_repeats=2,
        threads=1,
    )  # fmt: skip
    return out, report


def sample(market: Path, n: int = 24) -> list[np.ndarray]:
    paths = sorted((market / "query").glob("*.jpg")) + sorted(
        (market / "bounding_box_test").glob("*.jpg")
    )
    assert len(paths) >= n
    return [read_image(p) for p in paths[:n]]


def test_int8_features_agree_with_fp32(tiny_fp32: Path, int8: tuple, market: Path) -> None:
    out, report = int8
    crops = sample(market)  # test splits: never seen by the calibration
    a = OnnxEmbedder(tiny_fp32, threads=1).embed_crops(crops)
    b = OnnxEmbedder(out, threads=1).embed_crops(crops)
    cos = np.sum(a * b, axis=1)
    assert cos.min() >= 0.99, cos
    # not vacuous: different people get different embeddings (ImageNet features of crops)
    assert (a @ a.T)[np.triu_indices(len(a), 1)].mean() < 0.9
    assert report.cosine_min >= 0.99 and report.check_crops > 0
    # it is quantized: the weights of every conv of an INT8 layer type are stored as INT8
    q = onnx.load(str(out))
    kinds = layer_types(onnx.load(str(tiny_fp32)))
    int8_inits = {i.name for i in q.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    producer = {o: n for n in q.graph.node for o in n.output}
    for conv in (n for n in q.graph.node if n.op_type == "Conv"):
        w = conv.input[1]
        stored_int8 = w in producer and producer[w].input[0] in int8_inits
        assert stored_int8 == (kinds[conv.name] in report.int8_types), conv.name
    assert report.int8_types


def test_int8_keeps_the_input_contract(tiny_fp32: Path, int8: tuple) -> None:
    out, report = int8
    src, q = OnnxEmbedder(tiny_fp32, threads=1), OnnxEmbedder(out, threads=1)
    assert q.contract == src.contract and q.dim == src.dim == 64
    assert q.model_id != src.model_id and model_identity(out) == q.model_id
    meta = q._session.get_modelmeta().custom_metadata_map
    assert meta["precision"] == "int8" and meta["flip_average"] == "1"
    stored = json.loads(meta["quantization"])
    assert stored["method"] == "minmax" and stored["fp32_types"] == report.fp32_types
    # the auto fallback timed every layer type against the all-INT8 model and recorded it
    assert set(report.probe_ms) == {"fp32", "all_int8"} | {f"fp32:{k}" for k in report.layer_counts}
    assert set(report.int8_types) | set(report.fp32_types) == set(report.layer_counts)
    # the flip head and the normalisation stay FP32: the input feeds Slice/Concat directly
    g = onnx.load(str(out)).graph
    consumers = {n.op_type for n in g.node if g.input[0].name in n.input}
    assert consumers <= {"Slice", "Concat", "Shape"}, consumers


def test_fp32_fallback_by_layer_type(tiny_fp32: Path, market: Path, tmp_path: Path) -> None:
    out = tmp_path / "dw_fp32.onnx"
    report = quantize_onnx(
        tiny_fp32, out, market, method="minmax", num_crops=8, check_crops=4,
        fp32_types=["depthwise_conv"], threads=1,
    )  # fmt: skip
    assert report.fp32_types == ["depthwise_conv"] and not report.probe_ms
    # ONNX Runtime must not re-quantize the FP32 conv behind our back (WeightBiasQuantization)
    assert report.cosine_min >= 0.99
    q = onnx.load(str(out))
    inits = {i.name for i in q.graph.initializer}
    producer = {o: n for n in q.graph.node for o in n.output}
    depthwise = [
        n for n in q.graph.node
        if n.op_type == "Conv" and next(a.i for a in n.attribute if a.name == "group") > 1
    ]  # fmt: skip
    assert depthwise and all(n.input[1] in inits for n in depthwise)  # FP32 weights
    pointwise = [n for n in q.graph.node if n.op_type == "Conv" and n not in depthwise]
    assert all(producer[n.input[1]].op_type == "DequantizeLinear" for n in pointwise)
    # the ReLU6 in front stays INT8 (fused into the pointwise conv's output range); a no-op
    # Clip guard sits between its DequantizeLinear and each FP32 depthwise conv
    for n in depthwise:
        guard = producer[n.input[0]]
        assert guard.op_type == "Clip" and guard.name.endswith("_float_guard_clip"), guard.name
        assert producer[guard.input[0]].op_type == "DequantizeLinear"


def test_strip_flip_is_one_pass_of_the_same_network(
    tiny_fp32: Path, market: Path, tmp_path: Path
) -> None:
    one = tmp_path / "noflip.onnx"
    onnx.save(strip_flip_average(onnx.load(str(tiny_fp32))), str(one))
    crops = sample(market, 8)
    with_flip = OnnxEmbedder(tiny_fp32, threads=1).embed_crops(crops)
    single = OnnxEmbedder(one, threads=1)
    assert np.sum(with_flip * single.embed_crops(crops, flip=True), axis=1).min() >= 0.9999
    assert np.sum(with_flip * single.embed_crops(crops), axis=1).min() < 0.9999  # not the same
    assert "flip_average" not in single._session.get_modelmeta().custom_metadata_map
    # and the quantizer strips it on request, checking INT8 against the flip-averaged source
    out = tmp_path / "noflip_int8.onnx"
    report = quantize_onnx(
        tiny_fp32, out, market, method="minmax", num_crops=8, check_crops=8,
        fp32_types="none", flip=False, threads=1,
    )  # fmt: skip
    assert report.flip is False and report.cosine_min >= 0.99
    meta = OnnxEmbedder(out, threads=1)._session.get_modelmeta().custom_metadata_map
    assert "flip_average" not in meta and meta["precision"] == "int8"


def test_layer_types_of_mobilenetv2() -> None:
    kinds = layer_types(onnx.load(str(SOURCE_MODEL)))  # the shipped MobileNetV2 x1.0, FP32
    counts = {k: list(kinds.values()).count(k) for k in set(kinds.values())}
    # MobileNetV2: one 3x3 stem conv, 17 depthwise convs, 10 residual adds (+ their ReLU6s)
    assert {"conv", "depthwise_conv", "pointwise_conv", "residual_add"} == set(counts)
    assert counts["residual_add"] == 10
    ops = {n.name: n.op_type for n in onnx.load(str(SOURCE_MODEL)).graph.node}
    assert sum(k == "depthwise_conv" and ops[n] == "Conv" for n, k in kinds.items()) == 17


def test_empty_calibration_folder_fails_cleanly(tiny_fp32: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    out = tmp_path / "out" / "x.onnx"
    with pytest.raises(ReidTraceError, match="no calibration images"):
        quantize_onnx(tiny_fp32, out, empty)
    assert not out.exists() and not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ReidTraceError, match="does not exist"):
        quantize_onnx(tiny_fp32, out, tmp_path / "missing")
    with pytest.raises(ReidTraceError, match="calibration method"):
        quantize_onnx(tiny_fp32, out, empty, method="kl")
    with pytest.raises(ReidTraceError, match="layer type"):
        quantize_onnx(tiny_fp32, out, empty, fp32_types="pooling")


def test_already_quantized_and_flipless_sources_refused(
    int8: tuple, market: Path, tmp_path: Path
) -> None:
    with pytest.raises(ReidTraceError, match="already quantized"):
        quantize_onnx(int8[0], tmp_path / "again.onnx", market)


def test_market_folder_uses_its_training_crops(market: Path) -> None:
    paths = find_crops(market)
    assert paths and all(p.parent.name == "bounding_box_train" for p in paths)
    assert find_crops(market / "query")  # any folder of crops works too
    picked = sample_crops(paths, 5, seed=1)
    assert len(picked) == 5 and picked == sample_crops(paths, 5, seed=1)


def test_fp32_nodes(tiny_fp32: Path, market: Path, tmp_path: Path) -> None:
    kinds = layer_types(onnx.load(str(tiny_fp32)))
    stem = next(n for n, k in kinds.items() if k == "conv")
    out = tmp_path / "stem_fp32.onnx"
    report = quantize_onnx(
        tiny_fp32, out, market, method="minmax", num_crops=8, check_crops=4, fp32_types="none",
        fp32_nodes=[stem], threads=1,
    )  # fmt: skip
    assert report.fp32_nodes == [stem] and report.cosine_min >= 0.99
    q = onnx.load(str(out))
    inits = {i.name for i in q.graph.initializer}
    conv = next(n for n in q.graph.node if n.name == stem)
    assert conv.input[1] in inits  # its FP32 weight, not a DequantizeLinear output
    with pytest.raises(ReidTraceError, match="no quantizable node"):
        quantize_onnx(tiny_fp32, tmp_path / "x.onnx", market, fp32_nodes=["nope"])


def test_float_guard_is_exact_and_keeps_fp32_weights() -> None:
    """An FP32 depthwise conv reading a DequantizeLinear: ONNX Runtime quantizes its weights
    per tensor at load unless the guard hides the DequantizeLinear; the guard changes no value."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from compression.quantize import _guard_float_layers

    rng = np.random.default_rng(0)
    c = 8  # per-channel weight ranges 1e-3 .. 1e1: per-tensor INT8 flattens the small ones
    w = (rng.standard_normal((c, 1, 3, 3)) * np.logspace(-3, 1, c)[:, None, None, None]).astype(
        np.float32
    )
    inits = [
        numpy_helper.from_array(np.array(6 / 255, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.uint8), "zp"),
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(1e-3, np.float32), "s2"),
        numpy_helper.from_array(np.array(128, np.uint8), "zp2"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="dq"),
        helper.make_node("Conv", ["xd", "w"], ["c"], name="dw", group=c, pads=[1, 1, 1, 1]),
        # the next INT8 layer's input quantization: what makes ONNX Runtime fuse the conv
        helper.make_node("QuantizeLinear", ["c", "s2", "zp2"], ["cq"], name="q2"),
        helper.make_node("DequantizeLinear", ["cq", "s2", "zp2"], ["y"], name="dq2"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 6, 6])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.uniform(0, 6, (1, c, 6, 6)).astype(np.float32)

    def run(m: onnx.ModelProto, optimize: bool) -> np.ndarray:
        opts = ort.SessionOptions()
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        return sess.run(None, {"x": x})[0]

    exact = run(model, optimize=False)  # the FP32 conv as written
    small = slice(0, 3)  # the channels with the smallest weights
    unguarded = run(model, optimize=True)
    guarded_model = onnx.ModelProto()
    guarded_model.CopyFrom(model)
    assert _guard_float_layers(guarded_model) == 1
    guarded = run(guarded_model, optimize=True)
    np.testing.assert_allclose(guarded, exact, rtol=1e-5, atol=1e-6)
    # not vacuous: without the guard ONNX Runtime changed the small channels' weights
    assert not np.allclose(unguarded[:, small], exact[:, small], rtol=1e-2, atol=1e-5)


def test_bad_percentile_and_bias_crops_fail_cleanly(
    tiny_fp32: Path, market: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.onnx"
    with pytest.raises(ReidTraceError, match="percentile must be in"):
        quantize_onnx(tiny_fp32, out, market, percentile=101.0)
    with pytest.raises(ReidTraceError, match="bias correction needs at least 1 crop"):
        quantize_onnx(tiny_fp32, out, market, bias_crops=0)
    assert not out.exists()


def test_constant_activation_becomes_one_line_error() -> None:
    # numpy's histogram error (percentile/entropy calibration of a constant activation) is
    # turned into a ReidTraceError that names the fix; any other ValueError is left alone
    from onnxruntime.quantization import CalibrationMethod

    from compression.quantize import _constant_activation_hint

    hint = _constant_activation_hint(CalibrationMethod.Percentile)
    one = np.float32(1.0)
    with pytest.raises(ReidTraceError, match="constant over every calibration crop") as info, hint:
        np.histogram(np.full(8, one), bins=2048, range=(one, np.nextafter(one, 2 * one)))
    assert "minmax" in (info.value.hint or "")
    hint = _constant_activation_hint(CalibrationMethod.Percentile)
    with pytest.raises(ValueError, match="other"), hint:
        raise ValueError("other")


def test_compaction_drops_zero_points_and_changes_no_output(
    tiny_fp32: Path, int8: tuple, market: Path, tmp_path: Path
) -> None:
    out, report = int8
    q = onnx.load(str(out))
    inits = {i.name: i for i in q.graph.initializer}
    stored = (onnx.TensorProto.INT8, onnx.TensorProto.INT32)
    dq = [n for n in q.graph.node if n.op_type == "DequantizeLinear"]
    weights = [n for n in dq if n.input[0] in inits and inits[n.input[0]].data_type in stored]
    # every stored weight/bias lost its all-zero zero point; activations keep theirs
    assert weights and report.dropped_zero_points == len(weights)
    assert all(len(n.input) == 2 for n in weights)
    assert any(len(n.input) == 3 for n in dq if n not in weights)
    assert not q.graph.value_info
    # put the zero points back: the outputs are bit-identical and the file is larger
    for n in weights:
        zp = np.zeros(onnx.numpy_helper.to_array(inits[n.input[1]]).shape, np.int8)
        if inits[n.input[0]].data_type == onnx.TensorProto.INT32:
            zp = zp.astype(np.int32)
        name = n.input[0] + "_zp_back"
        q.graph.initializer.append(onnx.numpy_helper.from_array(zp, name))
        n.input.append(name)
    full = tmp_path / "with_zero_points.onnx"
    onnx.save(q, str(full))
    assert full.stat().st_size > out.stat().st_size
    crops = sample(market, 8)
    a = OnnxEmbedder(out, threads=1).embed_crops(crops)
    b = OnnxEmbedder(full, threads=1).embed_crops(crops)
    assert np.array_equal(a, b)
