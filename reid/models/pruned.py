"""Rebuilding channel-pruned networks from a checkpoint, without the pruning library.

Structured pruning (``compression.prune``) removes channels, so a pruned ``ReIDNet`` has the
registry's layers at smaller widths. Its checkpoint records those widths (``channels``: the
output channels of every conv that differs from the registered network); loading builds the
registered network and narrows each layer to the shapes in the state dict before loading it.
Hand-written (a few lines per layer type) because checkpoints must load with the ``train``
install alone, where torch-pruning (the ``compress`` extra) is absent.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["pruned_channels", "resize_to_state"]


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def pruned_channels(model: nn.Module, reference: nn.Module) -> dict[str, int]:
    """``{conv name: out_channels}`` of every conv narrower in ``model`` than in ``reference``.

    Empty for an unpruned model, so ordinary checkpoints do not change.
    """
    ref = dict(reference.named_modules())
    out: dict[str, int] = {}
    for name, mod in model.named_modules():
        other = ref.get(name)
        narrower = isinstance(other, nn.Conv2d) and mod.weight.shape != other.weight.shape
        if isinstance(mod, nn.Conv2d) and narrower:
            out[name] = int(mod.out_channels)
    return out


def _param(shape: torch.Size, like: Tensor | None) -> nn.Parameter | None:
    if like is None:
        return None
    return nn.Parameter(torch.empty(shape, dtype=like.dtype), requires_grad=like.requires_grad)


def resize_to_state(model: nn.Module, state: dict[str, Tensor], channels: dict[str, int]) -> None:
    """Narrow ``model``'s convs, batch norms and linears to the shapes in ``state``, in place.

    ``channels`` is the checkpoint's record of pruned convs; each must match the state dict (a
    mismatch means a damaged file: ``ValueError``, which the loader reports). Values are left
    uninitialised: the caller loads ``state`` next. Grouped convs other than depthwise ones do
    not occur in our families and are refused rather than guessed.
    """
    for name, mod in model.named_modules():
        w = state.get(f"{name}.weight")
        if w is None:
            continue
        if isinstance(mod, nn.Conv2d):
            out, in_per_group = int(w.shape[0]), int(w.shape[1])
            if name in channels and channels[name] != out:
                raise ValueError(f"{name}: recorded {channels[name]} channels, weights have {out}")
            if _is_depthwise(mod):
                if in_per_group != 1:
                    raise ValueError(f"{name}: depthwise conv with {in_per_group} inputs per group")
                mod.in_channels, mod.groups = out, out
            elif mod.groups == 1:
                mod.in_channels = in_per_group
            else:
                raise ValueError(f"{name}: grouped conv (groups={mod.groups}) cannot be resized")
            mod.out_channels = out
            mod.weight = _param(w.shape, mod.weight)
            if mod.bias is not None:
                mod.bias = _param(torch.Size([out]), mod.bias)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            n = int(w.shape[0])
            mod.num_features = n
            mod.weight = _param(torch.Size([n]), mod.weight)
            mod.bias = _param(torch.Size([n]), mod.bias)
            if mod.running_mean is not None:
                mod.running_mean = torch.zeros(n)
                mod.running_var = torch.ones(n)
        elif isinstance(mod, nn.Linear):
            mod.out_features, mod.in_features = int(w.shape[0]), int(w.shape[1])
            mod.weight = _param(w.shape, mod.weight)
            if mod.bias is not None:
                mod.bias = _param(torch.Size([mod.out_features]), mod.bias)
