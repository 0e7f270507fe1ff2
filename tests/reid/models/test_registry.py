"""The registry: every model builds and embeds, names are unique, unknown names list choices."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reid.errors import ReidTraceError
from reid.models import (
    ModelInfo,
    ReIDNet,
    create_model,
    list_models,
    model_info,
    register_model,
    registry,
)
from reid.models.profile import model_stats


@pytest.mark.parametrize("name", list_models())
def test_every_model_embeds_and_trains_on_a_small_batch(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3)
    assert isinstance(model, ReIDNet) and isinstance(model.info, ModelInfo)
    x = torch.rand(2, 3, 64, 32)  # tiny input: the registry test is about shapes, not quality
    model.eval()
    with torch.no_grad():
        emb = model(x)
        # eval normalises the post-BNNeck version of the very feature the triplet loss sees
        neck = torch.nn.functional.normalize(model.bnneck(model.global_feature(x)), dim=1)
    assert emb.shape == (2, model.embed_dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-4)  # eval gives unit vectors
    assert torch.allclose(neck, emb, atol=1e-6)
    model.train()
    logits, feat = model(x)
    assert logits.shape == (2, 3) and feat.shape == (2, model.embed_dim)


def test_registry_records_what_callers_need() -> None:
    info = model_info("osnet_x0_25_128x64")
    assert info.input_size == (128, 64) and info.embed_dim == 512
    assert info.family == "osnet" and info.network == "osnet_x0_25"
    assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
    assert model_info("osnet_x0_25").input_size == (256, 128)
    names = list_models()
    for required in ("resnet50", "osnet_x1_0", "osnet_x0_25", "mobilenetv2_x1_0"):
        assert required in names and model_info(required).input_size == (256, 128)
    assert "osnet_x0_25_128x64" in names and "mobilenetv2_x1_0_128x64" in names
    assert list_models("128x64") == [n for n in names if "128x64" in n]
    assert info.to_dict()["input_size"] == [128, 64]


def test_bnneck_bias_is_frozen_and_classifier_has_no_bias() -> None:
    model = create_model("osnet_x0_25_128x64", num_classes=5)
    assert not model.bnneck.bias.requires_grad
    assert model.classifier.bias is None and model.num_classes == 5
    assert not any(k.startswith("backbone.classifier") for k in model.state_dict())


def test_resnet50_has_last_stride_one() -> None:
    model = create_model("resnet50").eval()
    with torch.no_grad():
        fmap = model.backbone.featuremaps(torch.rand(1, 3, 64, 32))
    assert fmap.shape[-2:] == (4, 2)  # stride 16, not 32


def test_duplicate_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def osnet_x0_25() -> nn.Module:  # pragma: no cover - never built
        raise AssertionError

    with pytest.raises(ValueError, match="already registered"):
        register_model(input_size=(256, 128), embed_dim=512)(osnet_x0_25)
    register_model(input_size=(32, 16), embed_dim=512, name="tmp_unique")(osnet_x0_25)
    with pytest.raises(ValueError, match="already registered"):
        register_model(input_size=(32, 16), embed_dim=512, name="tmp_unique")(osnet_x0_25)


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ReidTraceError) as exc:
        create_model("osnet_x0_2")
    msg = str(exc.value)
    assert "'osnet_x0_2'" in msg and "\n" not in msg
    for name in list_models():
        assert name in exc.value.message
    assert "did you mean 'osnet_x0_25'" in (exc.value.hint or "")
    with pytest.raises(ReidTraceError):
        model_info("nope")


def test_bad_num_classes_and_unavailable_imagenet_are_input_errors() -> None:
    with pytest.raises(ReidTraceError, match="num_classes"):
        create_model("osnet_x0_25", num_classes=0)
    with pytest.raises(ReidTraceError, match="no ImageNet weights") as exc:
        create_model("osnet_x0_25", imagenet=True)
    assert "mobilenetv2_x1_0" in (exc.value.hint or "")


def test_model_stats_are_cheap_and_plausible() -> None:
    s = model_stats("osnet_x1_0")
    assert s["input_size"] == [256, 128] and s["embed_dim"] == 512
    assert 2.1 < s["params_m"] < 2.3  # torchreid: 2.2 M
    assert 0.9 < s["gmacs"] < 1.05  # torchreid's table: 978.9 M mult-adds at 256x128
    assert model_stats("osnet_x1_0_128x64")["gmacs"] == pytest.approx(s["gmacs"] / 4, rel=0.02)
