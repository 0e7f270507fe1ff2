"""Shared fixtures of the compression tests: tiny models and real-ish crops.

Networks here run on one torch thread (see tests/torch_threads.py).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.torch_threads import _one_torch_thread  # noqa: F401  (autouse fixture)

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

SIZE = (64, 32)  # the backbones are fully convolutional: a small input keeps tests fast


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny rendered Market folder (8 people, 3 cameras): real crops of the training domain."""
    from reid.synth.crops import CropsConfig, generate_crops

    root = tmp_path_factory.mktemp("crops")
    cfg = CropsConfig(seed=0, cameras=3, identities=8, images_per_camera=4)
    generate_crops(root, cfg, workers=1)
    return root / "market"


class TinyReID(torch.nn.Module):
    """A MobileNetV2 in miniature: stem, one inverted residual block (1x1 expand, 3x3
    depthwise, 1x1 project, skip add), a 1x1 head, global pooling, a BNNeck, L2 norm."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(16, 48, 1), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(48, 48, 3, 1, 1, groups=48), nn.ReLU6())
        self.project = nn.Conv2d(48, 16, 1)
        self.head = nn.Sequential(nn.Conv2d(16, 64, 1), nn.ReLU6())
        self.bnneck = nn.BatchNorm1d(64)
        self.info = SimpleNamespace(
            name="tiny_mbv2", input_size=SIZE, mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225), embed_dim=64,
        )  # fmt: skip

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.project(self.dw(self.expand(x)))
        return self.head(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.bnneck(self.pooled(x)), dim=1)


@pytest.fixture(scope="session")
def tiny_fp32(market: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TinyReID exported with flip averaging in the graph, like the shipped model; its BNNeck
    statistics come from the crops, so different people get clearly different embeddings."""
    from reid.embed import InputContract, preprocess_crops, read_image
    from reid.models.export import export_onnx

    torch.manual_seed(0)
    model = TinyReID().eval()
    contract = InputContract(*SIZE)
    x = preprocess_crops([read_image(p) for p in sorted(market.rglob("*.jpg"))], contract)
    with torch.no_grad():
        feats = model.pooled(torch.from_numpy(x)).numpy()
    model.bnneck.running_mean.copy_(torch.from_numpy(feats.mean(0)))
    model.bnneck.running_var.copy_(torch.from_numpy(feats.var(0) + 1e-4))
    return export_onnx(model, tmp_path_factory.mktemp("fp32") / "tiny.onnx", flip=True)


@pytest.fixture(scope="session")
def mnv2_fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registry's MobileNetV2 x1.0 (random weights) at 64x32 with flip averaging: a source
    model whose architecture the registry knows (the bench's PyTorch row rebuilds it)."""
    from reid.models import create_model
    from reid.models.export import export_onnx

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("mnv2") / "mnv2.onnx"
    return export_onnx(create_model("mobilenetv2_x1_0").eval(), out, input_size=SIZE, flip=True)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
