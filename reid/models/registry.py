"""The one registry of our model names (after timm's ``register_model``).

Each entry is a small builder that returns a torchreid backbone, plus the facts every caller
needs as data beside it (:class:`~reid.models.info.ModelInfo`: input size, mean/std, embedding
dim). Training, evaluation, ONNX export and ``compression/`` all call
:func:`reid.models.factory.create_model` (which builds on this module) and never a constructor,
so a name in a checkpoint or a config file is enough to rebuild the network.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reid.errors import ReidTraceError
from reid.models.info import IMAGENET_MEAN, IMAGENET_STD, ModelInfo

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["build_backbone", "filter_fn", "list_models", "model_info", "register_model"]

FilterFn = Callable[[dict[str, "Tensor"]], tuple[dict[str, "Tensor"], list[str]]]
"""Adapts a foreign state dict to ``ReIDNet`` keys; returns ``(state, dropped_keys)``."""
ImagenetFn = Callable[["nn.Module"], None]
"""Loads ImageNet weights into a freshly built backbone, in place."""


@dataclass(frozen=True)
class _Entry:
    info: ModelInfo
    builder: Callable[[], nn.Module]
    filter_fn: FilterFn | None
    imagenet_fn: ImagenetFn | None


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    *,
    input_size: tuple[int, int],
    embed_dim: int,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    filter_fn: FilterFn | None = None,
    imagenet_fn: ImagenetFn | None = None,
    name: str | None = None,
    family: str | None = None,
) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Register ``builder`` (a no-argument function returning a torchreid backbone).

    ``name`` defaults to the builder's name; stacking the decorator with another ``name`` registers
    the same network at another input size (the low-resolution variants for CPU training).
    ``family`` defaults to the defining module's last component. A duplicate name raises
    ``ValueError``: two builders under one name would make checkpoints ambiguous.
    """
    h, w = input_size
    if h <= 0 or w <= 0 or embed_dim <= 0:
        raise ValueError(f"bad registration: input_size={input_size}, embed_dim={embed_dim}")

    def decorate(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model name {key!r} is already registered")
        info = ModelInfo(
            name=key,
            family=family or builder.__module__.rsplit(".", 1)[-1],
            network=builder.__name__,
            input_size=(int(h), int(w)),
            mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in std),  # type: ignore[arg-type]
            embed_dim=int(embed_dim),
        )
        _REGISTRY[key] = _Entry(info, builder, filter_fn, imagenet_fn)
        return builder

    return decorate


def list_models(pattern: str = "") -> list[str]:
    """Registered names, sorted; ``pattern`` keeps names containing it (``"128x64"``)."""
    return sorted(n for n in _REGISTRY if pattern in n)


def _entry(name: str) -> _Entry:
    """The registry entry, or a ReidTraceError that lists the valid names (as timm/norfair do)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ReidTraceError(
            f"unknown model {name!r}; valid names: {', '.join(list_models())}",
            hint=hint + "`reidtrace models` lists them with sizes",
        ) from None


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered name (ReidTraceError listing names if unknown)."""
    return _entry(name).info


def build_backbone(name: str, *, imagenet: bool = False) -> nn.Module:
    """The bare torchreid backbone of ``name`` (ImageNet-initialised when asked and available)."""
    entry = _entry(name)
    backbone = entry.builder()
    if imagenet:
        if entry.imagenet_fn is None:
            have = [n for n, e in sorted(_REGISTRY.items()) if e.imagenet_fn is not None]
            raise ReidTraceError(
                f"no ImageNet weights on this machine for model {name!r} "
                "(pretrained downloads are not available)",
                hint=f"train it from scratch (--no-imagenet), or use one of {have}",
            )
        entry.imagenet_fn(backbone)
    return backbone


def filter_fn(name: str) -> FilterFn | None:
    """The family's ``filter_state_dict`` for ``name`` (None: keys are used as they are)."""
    return _entry(name).filter_fn
