"""Fixtures shared across packages: a tiny synthetic world and a tiny ONNX embedder."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reid.synth.world import WorldConfig, generate_world

TINY = WorldConfig(seed=6, cameras=2, identities=16, groups=2, minutes=8 / 60, passer_frac=0.2)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PETS = SHARED_DATA / "pets2009_s2l1_view001_480x360.avi"
YOLOX_NANO = SHARED_DATA.parent / "models" / "yolox_nano.onnx"
"""The third-party YOLOX-Nano file (never in the project): YOLOX tests skip without it."""


def require_yolox_nano() -> Path:
    """The YOLOX-Nano file, or skip the calling test saying where it was looked for."""
    if not YOLOX_NANO.is_file():
        pytest.skip(f"YOLOX-Nano not found at {YOLOX_NANO} (third-party file in ../shared/models)")
    return YOLOX_NANO


@pytest.fixture()
def yolox_nano() -> Path:
    """The YOLOX-Nano file (``require_yolox_nano``) as a fixture."""
    return require_yolox_nano()


@pytest.fixture(scope="session", autouse=True)
def clean_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test session gets an empty ``REIDTRACE_HOME``: no model a developer installed in
    their own home changes what detector ``auto`` picks (the bundled NanoDet here), so the
    committed metrics and the CLI tests see the same detector on every machine."""
    old = os.environ.get("REIDTRACE_HOME")
    home = tmp_path_factory.mktemp("home")
    os.environ["REIDTRACE_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("REIDTRACE_HOME", None)
    else:
        os.environ["REIDTRACE_HOME"] = old


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """2 cameras x 8 s, 16 people: rendered once per test session (~5 s)."""
    out = tmp_path_factory.mktemp("world") / "w"
    summary = generate_world(out, TINY, workers=1)
    return out, summary


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-node ONNX 'ReID model' (the flattened 16x8 input): fast and deterministic."""
    pytest.importorskip("onnx")
    return write_tiny_embedder(tmp_path_factory.mktemp("models") / "tiny.onnx")


def write_tiny_embedder(path: Path) -> Path:
    """Write the tiny flatten model to ``path`` (also used by benchmarks/reference_metrics.py,
    which reruns the tiny demo for the metrics table)."""
    import onnx
    from onnx import TensorProto, helper

    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, 16, 8])
    out = helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["n", 384])
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["embeddings"], axis=1)], "tiny", [images], [out]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(
        model,
        {
            "arch": "tiny-flatten",
            "input_height": "16",
            "input_width": "8",
            "mean": "[0.485, 0.456, 0.406]",
            "std": "[0.229, 0.224, 0.225]",
            "embed_dim": "384",
            "color": "RGB",
            "layout": "NCHW",
            "version": "test",
        },
    )
    onnx.save(model, str(path))
    return path
