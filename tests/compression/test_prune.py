"""Structured pruning: groups found, graph valid, MACs as planned, checkpoints, ThiNet refit."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from compression.prune import (  # noqa: E402
    count_macs,
    find_groups,
    keep_for_ratio,
    layer_costs,
    plan_macs,
    prune_model,
    reconstruction_error,
)
from reid.errors import ReidTraceError  # noqa: E402
from reid.models import create_model, load_checkpoint, save_checkpoint  # noqa: E402
from reid.models.export import export_checkpoint  # noqa: E402

SIZE = (64, 32)  # small input: the backbones are fully convolutional


@pytest.fixture(scope="module")
def mnv2():
    torch.manual_seed(0)
    return create_model("mobilenetv2_x1_0").eval()


@pytest.fixture(scope="module")
def samples():
    return torch.randn(16, 3, *SIZE, generator=torch.Generator().manual_seed(1))


def _half(groups):
    return {g.name: keep_for_ratio(g.channels, 0.5) for g in groups}


def test_mobilenetv2_groups_are_block_internal(mnv2) -> None:
    groups = find_groups(mnv2, SIZE)
    names = {g.name for g in groups}
    # every inverted residual's expansion (with its depthwise conv) is a group ...
    expand = [n for n, _ in mnv2.named_modules() if n.endswith(".conv1.conv") and "conv2." not in n]
    assert set(expand) - {"backbone.conv1.conv"} <= names
    g = next(g for g in groups if g.name == "backbone.conv3.0.conv1.conv")
    assert g.consumer == "backbone.conv3.0.conv3.0"
    assert g.depthwise == ("backbone.conv3.0.dwconv2.conv",)
    # ... but channels tied by a residual add and the embedding conv are not
    assert "backbone.conv3.0.conv3.0" not in names  # conv3.1 adds to it
    assert "backbone.conv9.conv" not in names


def test_layer_costs_match_torch_flop_counter(mnv2) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        mnv2(torch.zeros(1, 3, *SIZE))
    assert count_macs(mnv2, SIZE) == counter.get_total_flops() // 2


@pytest.mark.parametrize("criterion", ["l1", "l2", "thinet"])
def test_pruned_graph_is_valid_and_macs_shrink_as_planned(mnv2, samples, criterion) -> None:
    groups = find_groups(mnv2, SIZE)
    keep = _half(groups)
    before = {k: v.clone() for k, v in mnv2.state_dict().items()}
    pruned = prune_model(mnv2, keep, criterion=criterion, samples=samples, input_size=SIZE)
    planned = plan_macs(layer_costs(mnv2, groups, SIZE), keep)
    assert count_macs(pruned, SIZE) == planned
    assert planned < 0.6 * count_macs(mnv2, SIZE)
    modules = dict(pruned.named_modules())
    for g in groups:
        assert modules[g.name].out_channels == keep[g.name]
        assert modules[g.consumer].in_channels == keep[g.name]
    with torch.inference_mode():
        emb = pruned(samples[:3])
    assert emb.shape == (3, 1280)  # the embedding keeps its size
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in mnv2.state_dict().items())  # input untouched


def test_pruned_checkpoint_loads_and_exports(mnv2, samples, tmp_path: Path) -> None:
    pruned = prune_model(mnv2, _half(find_groups(mnv2, SIZE)), input_size=SIZE)
    plain = save_checkpoint(tmp_path / "plain.pt", mnv2, epoch=0)
    assert "channels" not in torch.load(plain, weights_only=True)  # old format unchanged
    path = save_checkpoint(tmp_path / "pruned.pt", pruned, epoch=3)
    raw = torch.load(path, weights_only=True)
    assert raw["channels"]["backbone.conv8.0.conv1.conv"] == 480
    loaded, meta = load_checkpoint(path)
    assert meta["epoch"] == 3
    with torch.inference_mode():
        assert torch.allclose(loaded(samples), pruned(samples), atol=1e-5)
    assert count_macs(loaded, SIZE) == count_macs(pruned, SIZE)
    # `reidtrace export` path: checkpoint -> ONNX, verified against PyTorch inside
    onnx_path = export_checkpoint(path, tmp_path / "pruned.onnx")
    assert onnx_path.stat().st_size < 0.7 * export_size(mnv2, tmp_path)


def export_size(model, tmp_path: Path) -> int:
    from reid.models.export import export_onnx

    return export_onnx(model, tmp_path / "full.onnx").stat().st_size


def test_damaged_pruned_checkpoint_is_one_line_error(mnv2, tmp_path: Path) -> None:
    pruned = prune_model(mnv2, _half(find_groups(mnv2, SIZE)), input_size=SIZE)
    path = save_checkpoint(tmp_path / "p.pt", pruned, epoch=0)
    raw = torch.load(path, weights_only=True)
    raw["channels"]["backbone.conv8.0.conv1.conv"] = 100  # disagrees with the weights
    torch.save(raw, path)
    with pytest.raises(ReidTraceError, match="does not match") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)


def test_thinet_refit_reduces_next_layer_reconstruction_error(mnv2, samples) -> None:
    groups = find_groups(mnv2, SIZE)
    g = next(g for g in groups if g.name == "backbone.conv6.0.conv1.conv")
    keep = {g.name: keep_for_ratio(g.channels, 0.6)}
    kw = {"criterion": "thinet", "samples": samples, "input_size": SIZE}
    refit = prune_model(mnv2, keep, **kw)
    plain = prune_model(mnv2, keep, refit=False, **kw)
    magnitude = prune_model(mnv2, keep, criterion="l2", input_size=SIZE)
    e_refit = reconstruction_error(refit, mnv2, g.consumer, samples)
    e_plain = reconstruction_error(plain, mnv2, g.consumer, samples)
    e_mag = reconstruction_error(magnitude, mnv2, g.consumer, samples)
    assert e_refit < 0.8 * e_plain
    assert e_plain < e_mag  # the greedy choice alone beats magnitude on its own objective


@pytest.fixture(scope="module")
def resnet50():
    torch.manual_seed(0)
    return create_model("resnet50").eval()


@pytest.mark.parametrize("criterion", ["l2", "thinet"])
def test_resnet50_prunes_bottleneck_internals(resnet50, samples, criterion, tmp_path) -> None:
    """The chain's prune stage on ResNet-50: only the two inner widths of each bottleneck
    shrink; block outputs, the downsample branches and the stem stay whole, so every residual
    add still matches, and the MACs are exactly the plan's."""
    groups = find_groups(resnet50, SIZE)
    assert len(groups) == 32  # conv1 and conv2 of each of the 16 bottlenecks
    assert all(g.name.rsplit(".", 1)[-1] in ("conv1", "conv2") for g in groups)
    keep = {g.name: keep_for_ratio(g.channels, 0.75) for g in groups}
    pruned = prune_model(resnet50, keep, criterion=criterion, samples=samples[:4], input_size=SIZE)
    planned = plan_macs(layer_costs(resnet50, groups, SIZE), keep)
    assert count_macs(pruned, SIZE) == planned < 0.35 * count_macs(resnet50, SIZE)
    full, modules = dict(resnet50.named_modules()), dict(pruned.named_modules())
    for name, m in modules.items():
        if isinstance(m, torch.nn.Conv2d) and name.endswith(("conv3", "downsample.0")):
            assert m.out_channels == full[name].out_channels, name  # residual widths kept
    assert modules["backbone.conv1"].out_channels == 64
    for g in groups:
        assert modules[g.name].out_channels == modules[g.consumer].in_channels == keep[g.name]
    x = torch.randn(2, 3, *SIZE)
    with torch.inference_mode():
        emb = pruned(x)
    assert emb.shape == (2, 2048)
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "r50.pt", pruned, epoch=0))
    with torch.inference_mode():
        assert torch.allclose(loaded(x), emb, atol=1e-5)


def test_bad_input_is_one_line_error(mnv2, samples) -> None:
    cases = [
        (lambda: find_groups(torch.nn.Conv2d(3, 8, 3)), "needs a reidtrace ReIDNet"),
        (lambda: prune_model(mnv2, {"backbone.nope": 4}, input_size=SIZE), "not in model"),
        (lambda: prune_model(mnv2, {"backbone.conv1.conv": 99}, input_size=SIZE), "cannot keep"),
        (lambda: prune_model(mnv2, {}, criterion="taylor"), "unknown pruning criterion"),
        (lambda: prune_model(mnv2, {}, criterion="thinet"), "needs sample images"),
        (lambda: keep_for_ratio(64, 1.0), "ratio must be"),
    ]
    for call, text in cases:
        with pytest.raises(ReidTraceError, match=text) as err:
            call()
        assert "\n" not in str(err.value)


def test_osnet_prunes_and_reloads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("osnet_x0_25").eval()
    groups = find_groups(model, SIZE)
    keep = _half(groups)
    pruned = prune_model(model, keep, input_size=SIZE)
    assert count_macs(pruned, SIZE) == plan_macs(layer_costs(model, groups, SIZE), keep)
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "o.pt", pruned, epoch=0))
    x = torch.randn(2, 3, *SIZE)
    with torch.inference_mode():
        assert torch.allclose(loaded(x), pruned(x), atol=1e-5)
