"""Weights in and out: our checkpoints, torchreid model-zoo files, other architectures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from reid.errors import ReidTraceError
from reid.models import create_model, load_checkpoint, load_weights, save_checkpoint
from reid.models.torchreid_zoo import build_model


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics, so a load that skipped them would show."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("osnet_x0_25_128x64", num_classes=7)
    randomise_bn(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    path = save_checkpoint(
        tmp_path / "run" / "last.pt", model, epoch=3, optimizer=opt, extra={"a": 1}
    )
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left
    loaded, meta = load_checkpoint(path)
    assert loaded.info == model.info and loaded.num_classes == 7 and not loaded.training
    assert meta["epoch"] == 3 and meta["arch"] == "osnet_x0_25_128x64" and meta["extra"] == {"a": 1}
    assert "optimizer" not in meta and "state_dict" not in meta
    x = torch.rand(3, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))
    _, meta = load_checkpoint(path, for_training=True)
    assert meta["optimizer"]["param_groups"][0]["lr"] == 1e-3
    # create_model(weights=...) reads the same file; the 7-way classifier is dropped for 1 class
    embedder = create_model("osnet_x0_25_128x64", weights=path).eval()
    with torch.no_grad():
        assert torch.equal(embedder(x), loaded(x))
    report = load_weights(create_model("osnet_x0_25_128x64"), path)
    assert report.source == "reidtrace" and report.dropped == ["classifier.weight"]


def test_torchreid_zoo_checkpoint_loads_with_the_same_features(tmp_path: Path) -> None:
    torch.manual_seed(0)
    theirs = build_model("osnet_x0_25", 751, loss="softmax", pretrained=False, use_gpu=False)
    randomise_bn(theirs)
    state = {"module." + k: v for k, v in theirs.state_dict().items()}  # as saved from DataParallel
    path = tmp_path / "osnet_x0_25_market.pth"
    torch.save({"state_dict": state, "epoch": 150, "rank1": 0.9}, path)

    ours = create_model("osnet_x0_25_128x64")
    report = load_weights(ours, path)
    assert report.source == "torchreid"
    assert sorted(report.dropped) == ["classifier.bias", "classifier.weight"]
    assert all(k.startswith(("bnneck.", "classifier.")) for k in report.missing)
    x = torch.rand(2, 3, 128, 64)
    theirs.eval(), ours.eval()
    with torch.no_grad():
        v = theirs(x)  # torchreid's eval output: the pooled (+fc) feature
        assert torch.allclose(ours.global_feature(x), v, atol=1e-5)
        # a fresh BNNeck (mean 0, var 1, weight 1, bias 0) only rescales: same direction
        assert torch.allclose(ours(x), F.normalize(v, dim=1), atol=1e-4)
    # a raw state dict (no "state_dict" wrapper) loads too
    torch.save(theirs.state_dict(), tmp_path / "raw.pth")
    assert load_weights(create_model("osnet_x0_25"), tmp_path / "raw.pth").loaded == report.loaded


def test_checkpoint_of_another_architecture_names_both(tmp_path: Path) -> None:
    other = build_model("osnet_x1_0", 10, loss="softmax", pretrained=False, use_gpu=False)
    torch.save({"state_dict": other.state_dict()}, tmp_path / "x1_0.pth")
    with pytest.raises(ReidTraceError) as exc:
        create_model("osnet_x0_25", weights=tmp_path / "x1_0.pth")
    assert "'osnet_x1_0'" in exc.value.message and "'osnet_x0_25'" in exc.value.message
    assert "--arch osnet_x1_0" in (exc.value.hint or "")
    ours = save_checkpoint(tmp_path / "mb.pt", create_model("mobilenetv2_x1_0_128x64"), epoch=1)
    with pytest.raises(ReidTraceError) as exc:
        load_weights(create_model("osnet_x0_25_128x64"), ours)
    assert "mobilenetv2_x1_0_128x64" in exc.value.message and "osnet_x0_25_128x64" in str(exc.value)
    # the same network at another input size is the same weights: allowed
    report = load_weights(create_model("mobilenetv2_x1_0"), ours)
    assert report.arch == "mobilenetv2_x1_0_128x64" and not report.dropped


def test_missing_corrupt_and_foreign_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(ReidTraceError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ReidTraceError, match="cannot read"):
        load_checkpoint(bad)
    with pytest.raises(ReidTraceError, match="cannot read"):
        create_model("osnet_x0_25", weights=bad)
    torch.save({"state_dict": {}}, tmp_path / "empty.pth")
    with pytest.raises(ReidTraceError, match="no state dict"):
        create_model("osnet_x0_25", weights=tmp_path / "empty.pth")
    torch.save({"w": torch.zeros(1)}, tmp_path / "foreign.pth")
    with pytest.raises(ReidTraceError, match="not a reidtrace checkpoint"):
        load_checkpoint(tmp_path / "foreign.pth")
    with pytest.raises(ReidTraceError, match="another architecture"):
        create_model("osnet_x0_25", weights=tmp_path / "foreign.pth")


def test_resnet_filter_drops_torchvision_imagenet_head(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.models.resnet50()
    torch.save(tv.state_dict(), tmp_path / "resnet50_imagenet.pth")
    report = load_weights(create_model("resnet50"), tmp_path / "resnet50_imagenet.pth")
    assert sorted(report.dropped) == ["fc.bias", "fc.weight"]
