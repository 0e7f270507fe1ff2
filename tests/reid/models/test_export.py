"""PyTorch -> ONNX export: parity, the metadata contract, atomic writes, checkpoints."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from reid.embed import OnnxEmbedder  # noqa: E402
from reid.errors import ReidTraceError  # noqa: E402
from reid.models import create_model, extract_features, save_checkpoint  # noqa: E402
from reid.models.export import export_checkpoint, export_onnx  # noqa: E402

SIZE = (64, 32)  # small input: the backbones are fully convolutional


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Under `pytest -n 2` on 2 cores, two OpenMP threads per worker run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Tiny(torch.nn.Module):
    """A stand-in ReIDNet: conv + global pool + L2 norm, with the ``info`` export reads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.info = SimpleNamespace(
            name="tiny", input_size=(32, 16), mean=(0.5,) * 3, std=(0.25,) * 3, embed_dim=8
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.conv(x).mean(dim=(2, 3)), dim=1)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_model("osnet_x0_25")
    # non-trivial BNNeck statistics, so the export must carry them
    m.bnneck.running_mean.normal_(0, 0.1)
    m.bnneck.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.fixture(scope="module")
def exported(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "osnet.onnx", input_size=SIZE)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_runtime_matches_pytorch(model: torch.nn.Module, exported: Path) -> None:
    emb = OnnxEmbedder(exported, threads=1)
    for n in (1, 5):  # the batch axis is dynamic (traced with 2, verified with 3)
        x = torch.randn(n, 3, *SIZE, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            want = model(x).numpy()
        got = emb.forward(x.numpy())
        assert got.shape == (n, 512)
        assert cosine_rows(got, want).min() >= 0.9999
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_metadata_records_the_input_contract(exported: Path) -> None:
    proto = onnx.load(str(exported))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["arch"] == "osnet_x0_25"
    assert (meta["input_height"], meta["input_width"], meta["embed_dim"]) == ("64", "32", "512")
    assert (meta["color"], meta["layout"]) == ("RGB", "NCHW")
    assert meta["mean"] == "[0.485, 0.456, 0.406]" and meta["std"] == "[0.229, 0.224, 0.225]"
    assert meta["version"]
    (inp,) = proto.graph.input
    (out,) = proto.graph.output
    assert inp.name == "images" and out.name == "embeddings"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 64, 32]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_onnx_and_pytorch_features_of_image_files_agree(
    model: torch.nn.Module, exported: Path, tmp_path: Path
) -> None:
    """The serving path and the PyTorch evaluation path read and normalise images alike."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(128, 64), (100, 41), (64, 32)]):
        paths.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    onnx_feats = OnnxEmbedder(exported).embed_paths(paths, flip=True)
    small = copy.deepcopy(model)  # the same weights, fed 64x32 like the export
    small.info = replace(model.info, input_size=SIZE)
    torch_feats = extract_features(small, paths, batch_size=2, flip=True)
    assert cosine_rows(onnx_feats, torch_feats).min() >= 0.9999


def test_any_module_with_info_exports(tmp_path: Path) -> None:
    tiny = Tiny()
    out = export_onnx(tiny, tmp_path / "tiny.onnx", opset=13)
    emb = OnnxEmbedder(out)
    assert (emb.dim, emb.contract.height, emb.contract.width) == (8, 32, 16)
    assert emb.contract.mean == (0.5, 0.5, 0.5) and emb.contract.arch == "tiny"


def test_failed_verification_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reid.models.export.MIN_COSINE", 1.5)  # impossible: every export "fails"
    tiny = Tiny().train()
    with pytest.raises(ReidTraceError, match="disagrees with PyTorch"):
        export_onnx(tiny, tmp_path / "m.onnx")
    assert tiny.training  # the caller's mode is restored
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_is_not_unit_length_is_a_bug(tmp_path: Path) -> None:
    tiny = Tiny()
    tiny.forward = lambda x: 3 * torch.ones(len(x), 8)  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="unit-length"):
        export_onnx(tiny, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "needle"), [({"opset": 5}, "opset"), ({"out": "m.onnx.txt"}, ".onnx")]
)
def test_bad_arguments_are_user_errors(
    model: torch.nn.Module, tmp_path: Path, kwargs: dict, needle: str
) -> None:
    out = tmp_path / kwargs.pop("out", "m.onnx")
    with pytest.raises(ReidTraceError, match=needle):
        export_onnx(model, out, **kwargs)
    assert not out.exists()


def test_export_checkpoint(model: torch.nn.Module, tmp_path: Path) -> None:
    ckpt = save_checkpoint(tmp_path / "best.pt", model, epoch=7)
    out = export_checkpoint(ckpt, tmp_path / "sub" / "best.onnx")
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not the temporary file's mode
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["checkpoint"] == "best.pt" and meta["epoch"] == "7"
    assert meta["input_height"] == "256" and meta["input_width"] == "128"
    with pytest.raises(ReidTraceError, match="does not exist"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "x.onnx")


def test_flip_averaging_is_baked_into_the_graph(tmp_path: Path) -> None:
    torch.manual_seed(1)
    tiny = Tiny().eval()
    out = export_onnx(tiny, tmp_path / "flip.onnx", flip=True)
    proto = onnx.load(str(out))
    assert {p.key: p.value for p in proto.metadata_props}["flip_average"] == "1"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).normal(size=(3, 3, 32, 16)).astype(np.float32)
    got = session.run(None, {name: x})[0]
    mirrored = session.run(None, {name: x[..., ::-1].copy()})[0]
    # a crop and its mirror image get the same embedding, which a plain model does not give
    np.testing.assert_allclose(got, mirrored, atol=1e-5)
    with torch.no_grad():
        t = torch.from_numpy(x)
        want = torch.nn.functional.normalize(tiny(t) + tiny(t.flip(3)), dim=1).numpy()
        plain = tiny(t).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - plain).max() > 1e-3


def _denormals(path: Path) -> int:
    from onnx import numpy_helper

    tiny = np.finfo(np.float32).tiny
    count = 0
    for init in onnx.load(str(path)).graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32:
            count += int(((w != 0) & (np.abs(w) < tiny)).sum())
    return count


def test_export_flushes_denormal_weights_without_changing_outputs(tmp_path: Path) -> None:
    """Denormal weights (dead channels after batch-norm folding) made the shipped model 5x
    slower on x86; the file must hold zeros instead, and the features must not move."""
    tiny = Tiny()
    with torch.no_grad():
        tiny.conv.weight[0, 0, 0, :] = torch.tensor([1e-40, -3e-39, 2e-45])
    assert torch.count_nonzero(tiny.conv.weight.abs() < 1e-38) == 3
    out = export_onnx(tiny, tmp_path / "tiny.onnx")
    assert _denormals(out) == 0
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 16)).astype(np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"images": x}
    )
    with torch.no_grad():
        want = tiny(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got[0], want, atol=1e-6)


def test_shipped_models_have_no_denormal_weights() -> None:
    """Both bundled files: the FP32 source, and the INT8 default's FP32 tensors (biases,
    scales, the layers kept in FP32), which ingestion runs on every crop."""
    from reid.embed import default_model, source_model

    assert _denormals(source_model()) == 0
    assert _denormals(default_model()) == 0
