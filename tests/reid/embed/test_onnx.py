"""The ONNX Runtime embedder on hand-made ONNX graphs (no torch needed).

Most tests use a "flatten" model whose embedding is the normalised, flattened network input, so
the embedding exposes the preprocessing pixel by pixel and can be checked against numpy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from reid.detections import Detections
from reid.embed import (
    VALID_FLAG,
    InputContract,
    OnnxEmbedder,
    create_embedder,
    default_model,
    preprocess_crops,
    source_model,
)
from reid.embed.model_file import IMAGENET_MEAN, IMAGENET_STD
from reid.errors import ReidTraceError
from reid.protocols import Embedder

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

H, W = 16, 8
MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)
META = {
    "arch": "flatten",
    "input_height": str(H),
    "input_width": str(W),
    "mean": json.dumps(MEAN),
    "std": json.dumps(STD),
    "embed_dim": str(3 * H * W),
    "color": "RGB",
    "layout": "NCHW",
    "version": "test",
}


def make_onnx(
    path: Path,
    *,
    in_shape: list = ("n", 3, H, W),  # type: ignore[assignment]
    meta: dict[str, str] | None = None,
    elem: int = TensorProto.FLOAT,
    op: str = "flatten",
    two_inputs: bool = False,
) -> Path:
    """A one-node graph: ``flatten`` (N, C*H*W), ``identity`` (output = input, N-D) or ``pool``
    (global average pool -> (N, C))."""
    inputs = [helper.make_tensor_value_info("images", elem, list(in_shape))]
    if two_inputs:
        inputs.append(helper.make_tensor_value_info("extra", elem, list(in_shape)))
    if op == "flatten":
        nodes = [helper.make_node("Flatten", ["images"], ["embeddings"], axis=1)]
        out_shape: list = [in_shape[0], None]
    elif op == "identity":
        nodes = [helper.make_node("Identity", ["images"], ["embeddings"])]
        out_shape = list(in_shape)
    else:
        nodes = [
            helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["embeddings"], axis=1),
        ]
        out_shape = [in_shape[0], in_shape[1]]
    outputs = [helper.make_tensor_value_info("embeddings", elem, out_shape)]
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if meta:
        helper.set_model_props(model, meta)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def flat_model(tmp_path: Path) -> Path:
    return make_onnx(tmp_path / "flat.onnx", meta=META)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ref_resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize with pixel centres at +0.5 (OpenCV's INTER_LINEAR), float result."""

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(h, img.shape[0])
    x0, x1, fx = axis(w, img.shape[1])
    f = img.astype(np.float64)
    top = f[y0][:, x0] * (1 - fx)[None, :, None] + f[y0][:, x1] * fx[None, :, None]
    bot = f[y1][:, x0] * (1 - fx)[None, :, None] + f[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def ref_preprocess(crop: np.ndarray, mean=MEAN, std=STD, h: int = H, w: int = W) -> np.ndarray:
    """The documented pipeline in plain numpy: resize, BGR->RGB, /255, mean/std, CHW."""
    img = np.round(ref_resize(crop, h, w)) if crop.shape[:2] != (h, w) else crop.astype(float)
    rgb = img[..., ::-1] / 255.0
    return ((rgb - np.array(mean)) / np.array(std)).transpose(2, 0, 1).astype(np.float32)


def crops(seed: int, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def dets(boxes: list[list[float]]) -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.array(boxes, np.float32).reshape(n, 4),
        confidence=np.ones(n, np.float32),
        frame_idx=np.zeros(n, np.int64),
    )


# --- preprocessing ------------------------------------------------------------------------------
def test_preprocessing_matches_numpy_reference() -> None:
    contract = InputContract(H, W, MEAN, STD)
    batch = crops(0, [(H, W), (37, 19), (5, 3), (128, 64)])
    got = preprocess_crops(batch, contract)
    assert got.shape == (4, 3, H, W) and got.dtype == np.float32 and got.flags.c_contiguous
    want = np.stack([ref_preprocess(c) for c in batch])
    # no resize: exact; resized: OpenCV's fixed-point interpolation may differ by one grey level
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    one_level = 1.0 / 255.0 / min(STD)
    np.testing.assert_allclose(got[1:], want[1:], atol=one_level + 1e-5)
    assert np.abs(got[1:] - want[1:]).mean() < 0.25 * one_level  # mostly equal


def test_bgr_contract_keeps_channel_order() -> None:
    (crop,) = crops(1, [(H, W)])
    rgb = preprocess_crops([crop], InputContract(H, W, MEAN, STD, color="RGB"))
    bgr = preprocess_crops([crop], InputContract(H, W, MEAN, STD, color="BGR"))
    np.testing.assert_allclose(bgr[0, 0] * STD[0] + MEAN[0], crop[..., 0] / 255.0, atol=1e-6)
    np.testing.assert_allclose(rgb[0, 0] * STD[0] + MEAN[0], crop[..., 2] / 255.0, atol=1e-6)


def test_grey_and_bgra_crops_are_converted() -> None:
    contract = InputContract(H, W, MEAN, STD)
    grey = np.full((H, W), 100, np.uint8)
    bgra = np.dstack([np.full((H, W, 3), 100, np.uint8), np.zeros((H, W), np.uint8)])
    out = preprocess_crops([grey, bgra], contract)
    np.testing.assert_allclose(out[0], out[1])


@pytest.mark.parametrize(
    "bad", [np.zeros((0, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3))]
)
def test_bad_crops_are_user_errors(bad: np.ndarray) -> None:
    with pytest.raises(ReidTraceError, match="crop 0"):
        preprocess_crops([bad], InputContract(H, W))


# --- the embedder -------------------------------------------------------------------------------
def test_embed_crops_equals_reference(flat_model: Path) -> None:
    emb = OnnxEmbedder(flat_model, batch_size=3)
    assert emb.dim == 3 * H * W and isinstance(emb, Embedder)
    assert emb.contract == InputContract(H, W, MEAN, STD, "RGB", "NCHW", 3 * H * W, "flatten")
    batch = crops(2, [(H, W)] * 7)  # 7 crops in batches of 3: 3 + 3 + 1
    got = emb.embed_crops(batch)
    want = unit(np.stack([ref_preprocess(c).ravel() for c in batch]))
    assert got.dtype == np.float32 and got.shape == (7, emb.dim)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert emb.embed_crops([]).shape == (0, emb.dim)


def test_session_options(flat_model: Path) -> None:
    opts = OnnxEmbedder(flat_model)._session.get_session_options()
    assert opts.intra_op_num_threads == os.cpu_count()
    assert opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert (
        OnnxEmbedder(flat_model, threads=1)._session.get_session_options().intra_op_num_threads == 1
    )


def test_embed_fills_detections_and_handles_boxes_outside(flat_model: Path) -> None:
    emb = OnnxEmbedder(flat_model)
    (frame,) = crops(3, [(60, 80)])
    boxes = [
        [10.4, 5.6, 29.2, 44.1],  # inside: rounded outward to frame[5:45, 10:30]
        [-10, -5, 20, 30],  # partly outside (top left): frame[0:30, 0:20]
        [70, 50, 100, 90],  # partly outside (bottom right): frame[50:60, 70:80]
        [100, 100, 120, 130],  # wholly outside
        [30, 30, 20, 20],  # inverted
        [5, 5, 5, 40],  # zero width
        [np.nan, 0, 10, 10],  # not a number
    ]
    d = dets(boxes)
    d.extra["score"] = np.arange(len(boxes), dtype=np.float32)
    out = emb.embed(frame, d)
    assert out is not d and d.embedding is None  # the input is left alone
    assert out.embedding is not None and out.embedding.shape == (7, emb.dim)
    np.testing.assert_array_equal(out.extra[VALID_FLAG], [1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(out.extra["score"], d.extra["score"])
    norms = np.linalg.norm(out.embedding, axis=1)
    np.testing.assert_allclose(norms[:3], 1.0, atol=1e-5)
    np.testing.assert_array_equal(norms[3:], 0.0)
    want = emb.embed_crops([frame[5:45, 10:30], frame[0:30, 0:20], frame[50:60, 70:80]])
    np.testing.assert_allclose(out.embedding[:3], want, atol=1e-6)


def test_embed_empty_and_grey_frames(flat_model: Path) -> None:
    emb = OnnxEmbedder(flat_model)
    out = emb.embed(np.zeros((20, 20, 3), np.uint8), Detections.empty("cam1"))
    assert len(out) == 0 and out.embedding is not None and out.embedding.shape == (0, emb.dim)
    grey = emb.embed(np.full((20, 20), 7, np.uint8), dets([[0, 0, 10, 20]]))
    colour = emb.embed(np.full((20, 20, 3), 7, np.uint8), dets([[0, 0, 10, 20]]))
    np.testing.assert_allclose(grey.embedding, colour.embedding)
    with pytest.raises(ReidTraceError, match="frame"):
        emb.embed(np.zeros((20, 20, 3), np.float32), dets([[0, 0, 10, 20]]))


def test_embed_paths_reads_files_and_flips(tmp_path: Path, flat_model: Path) -> None:
    emb = OnnxEmbedder(flat_model, batch_size=2)
    batch = crops(4, [(H, W)] * 5)
    paths = []
    for i, c in enumerate(batch):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), c)
    seen: list[tuple[str, int, int]] = []
    feats = emb.embed_paths(paths, progress=lambda *a: seen.append(a))
    np.testing.assert_allclose(feats, emb.embed_crops(batch), atol=1e-6)
    assert [s[1:] for s in seen] == [(2, 5), (4, 5), (5, 5)]
    flipped = emb.embed_paths(paths, flip=True)
    mirror = emb.embed_crops([c[:, ::-1].copy() for c in batch])
    np.testing.assert_allclose(flipped, unit(feats + mirror), atol=1e-5)
    np.testing.assert_allclose(emb.embed_crops(batch, flip=True), flipped, atol=1e-6)


def test_unreadable_image_is_a_user_error(tmp_path: Path, flat_model: Path) -> None:
    emb = OnnxEmbedder(flat_model)
    bad = tmp_path / "0001_c1s1_000001_00.jpg"
    bad.write_text("not a jpeg")
    with pytest.raises(ReidTraceError, match="not a readable image"):
        emb.embed_paths([bad])
    with pytest.raises(ReidTraceError, match="does not exist"):
        emb.embed_paths([tmp_path / "missing.jpg"])


def test_fixed_batch_model_is_fed_its_batch_size(tmp_path: Path) -> None:
    fixed = OnnxEmbedder(make_onnx(tmp_path / "b1.onnx", in_shape=[1, 3, H, W], meta=META))
    dynamic = OnnxEmbedder(make_onnx(tmp_path / "bn.onnx", meta=META))
    batch = crops(5, [(H, W)] * 5)
    assert fixed.batch_size == 1
    np.testing.assert_allclose(fixed.embed_crops(batch), dynamic.embed_crops(batch), atol=1e-6)


def test_without_metadata_a_fixed_input_size_is_enough(tmp_path: Path) -> None:
    emb = OnnxEmbedder(make_onnx(tmp_path / "plain.onnx", in_shape=["n", 3, 24, 12], op="pool"))
    assert emb.contract.height == 24 and emb.contract.width == 12 and emb.dim == 3
    assert emb.contract.mean == IMAGENET_MEAN and emb.contract.std == IMAGENET_STD
    assert emb.embed_crops(crops(6, [(30, 10)])).shape == (1, 3)


def test_dynamic_output_dim_is_probed(tmp_path: Path) -> None:
    meta = {k: v for k, v in META.items() if k != "embed_dim"}
    emb = OnnxEmbedder(make_onnx(tmp_path / "probe.onnx", meta=meta))
    assert emb.dim == 3 * H * W


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"in_shape": ["n", 1, H, W]}, "expects N x 3 x H x W"),
        ({"in_shape": ["n", 3, H]}, "expects N x 3 x H x W"),
        ({"elem": TensorProto.DOUBLE}, "expects N x 3 x H x W"),
        ({"two_inputs": True}, "expects N x 3 x H x W"),
        ({"op": "identity"}, "one N x D output"),
        ({"in_shape": ["n", 3, "h", "w"], "meta": None}, "no input size"),
        ({"in_shape": ["n", 3, 32, W]}, "disagrees"),
        ({"meta": {**META, "mean": "abc"}}, "mean"),
        ({"meta": {**META, "std": "[1, 0, 1]"}}, "std"),
        ({"meta": {**META, "layout": "NHWC"}}, "layout"),
        ({"meta": {**META, "color": "YUV"}}, "color"),
        ({"meta": {**META, "input_height": "-3"}}, "input_height"),
        ({"meta": {**META, "embed_dim": "7"}}, "embed_dim"),
    ],
)
def test_unsuitable_models_are_user_errors(tmp_path: Path, kwargs: dict, needle: str) -> None:
    kwargs = {"meta": META, **kwargs}
    path = make_onnx(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ReidTraceError, match=needle):
        OnnxEmbedder(path)


def test_missing_or_non_onnx_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ReidTraceError, match="does not exist"):
        OnnxEmbedder(tmp_path / "nope.onnx")
    with pytest.raises(ReidTraceError, match="folder"):
        OnnxEmbedder(tmp_path)
    text = tmp_path / "model.onnx"
    text.write_text("hello")
    with pytest.raises(ReidTraceError, match="not a loadable ONNX model"):
        OnnxEmbedder(text)


def test_bad_arguments_are_user_errors(flat_model: Path) -> None:
    with pytest.raises(ReidTraceError, match="threads"):
        OnnxEmbedder(flat_model, threads=0)
    with pytest.raises(ReidTraceError, match="batch size"):
        OnnxEmbedder(flat_model, batch_size=0)


def test_create_embedder(flat_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert create_embedder("onnx", path=flat_model).dim == 3 * H * W
    with pytest.raises(ReidTraceError, match="unknown embedder"):
        create_embedder("tensorrt", path=flat_model)
    monkeypatch.setattr("reid.embed.onnx.DEFAULT_MODEL", tmp_path / "weights" / "default.onnx")
    with pytest.raises(ReidTraceError, match="no default model shipped yet"):
        create_embedder()
    monkeypatch.setattr("reid.embed.onnx.SOURCE_MODEL", tmp_path / "weights" / "source.onnx")
    with pytest.raises(ReidTraceError, match="no FP32 source model shipped") as err:
        source_model()
    assert "--model" in err.value.hint


def test_the_bundled_default_is_the_int8_one_pass_model_of_the_source() -> None:
    """The default embedder is the INT8 compression of the FP32 source: same input contract and
    embedding size, one pass a crop (no flip averaging in the graph), its own identity (vectors
    of the two are refused by each other's stores). The source keeps the identity the default
    had before (the same bytes)."""
    default, source = OnnxEmbedder(default_model()), OnnxEmbedder(source_model())
    meta = lambda e: dict(e._session.get_modelmeta().custom_metadata_map)  # noqa: E731
    assert meta(default)["precision"] == "int8" and "flip_average" not in meta(default)
    assert meta(source).get("precision", "fp32") == "fp32" and meta(source)["flip_average"] == "1"
    assert default.contract == source.contract and default.dim == source.dim == 1280
    assert source.model_id == "mobilenetv2_x1_0-5e696aa0c364"
    assert default.model_id != source.model_id
    assert create_embedder().model_id == default.model_id
