"""Structured channel pruning of a ``ReIDNet`` on torch-pruning's dependency graph.

What is pruned: the *internal* channels of each block, i.e. the output channels of a conv that
feed exactly one ordinary conv (the "consumer"), possibly through batch norms, activations and
depthwise convs, which torch-pruning's dependency graph narrows together with them. In
MobileNetV2 that is every inverted residual's expanded (hidden) width, shared by the 1x1
expansion, the depthwise 3x3 and the 1x1 projection's input (about 90% of the multiply-adds),
plus the stem; in ResNet-50 the two inner widths of every bottleneck. Left at full width: channels
tied by a residual add (the block outputs) and the embedding, so the retrieval feature keeps its
dimension, the embedder's metadata and the teacher's features keep their meaning, and ThiNet's
"next layer" is always one well-defined conv.

Two ways to choose the channels of a group:

- ``"l1"`` / ``"l2"``: magnitude of the weights of the whole group (torch-pruning's
  ``GroupMagnitudeImportance``): fast, data-free.
- ``"thinet"`` (Luo et al., ICCV 2017): on sample images, greedily remove the channels whose
  summed contribution to the consumer's output is smallest, then refit the consumer's weights
  by (ridge) least squares so the pruned network's consumer output matches the *original*
  network's on those samples. Groups are pruned in forward order with inputs taken from the
  network pruned so far, so each refit also absorbs the error of the groups before it.

The result is still a ``ReIDNet`` (same registry name, same embedding size); checkpoints record
the narrowed widths (``reid.models.pruned``) and ``reidtrace export`` exports it as any other.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import Tensor, nn

from reid.errors import ReidTraceError
from reid.models import ReIDNet

__all__ = [
    "CRITERIA",
    "ChannelGroup",
    "LayerCost",
    "count_macs",
    "find_groups",
    "keep_for_ratio",
    "layer_costs",
    "plan_macs",
    "prune_model",
    "reconstruction_error",
]

CRITERIA = ("l1", "l2", "thinet")
Progress = Callable[[str, int, int], None]
# nodes torch-pruning adds for functional ops that act channel by channel (safe inside a group);
# anything else (an add, a concat, a reshape) means the channels are shared beyond one block
_CHANNELWISE = ("Hardtanh", "Relu", "ReLU", "Clamp", "Silu", "Gelu", "Sigmoid", "Hardswish", "Pool")


@dataclass(frozen=True)
class ChannelGroup:
    """Output channels of conv ``name``, and the layers whose width follows them."""

    name: str  # the conv whose output channels are pruned
    consumer: str  # the one ordinary conv that reads them (ThiNet's "next layer")
    channels: int
    depthwise: tuple[str, ...]  # depthwise convs narrowed with the group (MobileNetV2)


@dataclass(frozen=True)
class LayerCost:
    """One weight layer with what its multiply-adds depend on, for fast plan arithmetic."""

    name: str
    kind: str  # "conv", "depthwise", "linear"
    in_channels: int
    out_channels: int
    per_pair: int  # multiply-adds per (input, output) channel pair: kh * kw * output pixels
    in_group: str | None  # group whose pruning narrows this layer's input
    out_group: str | None  # group whose pruning narrows this layer's output
    # conv geometry, to time the layer alone at other widths (latency search)
    in_hw: tuple[int, int] = (1, 1)
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)


def _check_model(model: nn.Module) -> ReIDNet:
    if not isinstance(model, ReIDNet):
        raise ReidTraceError(
            f"pruning needs a reidtrace ReIDNet, got {type(model).__name__}",
            hint="load it with reid.models.load_checkpoint or create_model",
        )
    return model


def _example(model: ReIDNet, input_size: tuple[int, int] | None) -> Tensor:
    h, w = input_size or model.info.input_size
    return torch.zeros(1, 3, h, w, device=next(model.parameters()).device)


def _graph(model: ReIDNet, input_size: tuple[int, int] | None) -> tp.DependencyGraph:
    """torch-pruning's dependency graph of the eval-mode network (the classifier is unused)."""
    was = model.training
    model.eval()
    try:
        return tp.DependencyGraph().build_dependency(
            model, example_inputs=_example(model, input_size), verbose=False
        )
    finally:
        model.train(was)


def _depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels


def _classify(dg: tp.DependencyGraph, group: tp.Group, root: nn.Module, names: dict) -> tuple:
    """``(consumer, depthwise names)`` when ``group`` is internal to one block, else None."""
    consumers: list[str] = []
    depthwise: list[str] = []
    for dep, _ in group:
        mod, fn = dep.target.module, dep.handler
        if isinstance(mod, nn.Conv2d):
            if _depthwise(mod):
                if names[mod] not in depthwise:
                    depthwise.append(names[mod])
            elif dg.is_out_channel_pruning_fn(fn):
                if mod is not root:
                    return None  # two convs write these channels: a residual add
            elif names[mod] not in consumers:
                consumers.append(names[mod])
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            continue
        elif isinstance(mod, nn.Module) and not isinstance(mod, tp.ops._ElementWiseOp):
            return None  # a linear layer, concat, reshape...: beyond one block
        elif not any(k in str(dep.target) for k in _CHANNELWISE):
            return None
    return (consumers[0], tuple(depthwise)) if len(consumers) == 1 else None


def find_groups(model: ReIDNet, input_size: tuple[int, int] | None = None) -> list[ChannelGroup]:
    """The prunable channel groups of ``model``, in forward order (see the module docstring).

    Raises ReidTraceError for a model with none (an architecture this pruner does not know).
    """
    model = _check_model(model)
    dg = _graph(model, input_size)
    names = {m: n for n, m in model.named_modules()}
    groups: list[ChannelGroup] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Conv2d) or _depthwise(mod) or mod.out_channels < 2:
            continue
        group = dg.get_pruning_group(mod, tp.prune_conv_out_channels, idxs=[0])
        found = _classify(dg, group, mod, names)
        if found is not None:
            groups.append(ChannelGroup(name, found[0], int(mod.out_channels), found[1]))
    if not groups:
        raise ReidTraceError(
            f"no prunable channel groups in model {model.info.name!r}",
            hint="structured pruning supports the registry's MobileNetV2 and ResNet families",
        )
    return groups


def layer_costs(
    model: ReIDNet,
    groups: Sequence[ChannelGroup] | None = None,
    input_size: tuple[int, int] | None = None,
) -> list[LayerCost]:
    """Every conv and linear the eval forward runs, with its cost structure (forward order).

    Output sizes come from one forward pass on zeros with hooks: exact for any input size.
    """
    model = _check_model(model)
    groups = find_groups(model, input_size) if groups is None else groups
    in_of = {g.consumer: g.name for g in groups}
    out_of = {g.name: g.name for g in groups}
    for g in groups:
        for d in g.depthwise:
            in_of[d] = out_of[d] = g.name
    rows: list[LayerCost] = []
    hooks = []

    def hook(name: str) -> Callable:
        def record(mod: nn.Module, inp: tuple, out: Tensor) -> None:
            geometry: dict = {}
            if isinstance(mod, nn.Conv2d):
                geometry = {
                    "in_hw": (int(inp[0].shape[2]), int(inp[0].shape[3])),
                    "kernel": tuple(mod.kernel_size),
                    "stride": tuple(mod.stride),
                    "padding": tuple(mod.padding),
                }
                kind = "depthwise" if _depthwise(mod) else "conv"
                pixels = out.shape[2] * out.shape[3]
                per = mod.kernel_size[0] * mod.kernel_size[1] * pixels
                cin, cout = mod.in_channels, mod.out_channels
            else:
                kind, per, cin, cout = "linear", 1, mod.in_features, mod.out_features
            rows.append(
                LayerCost(name, kind, cin, cout, per, in_of.get(name), out_of.get(name), **geometry)
            )

        return record

    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d | nn.Linear):
            hooks.append(mod.register_forward_hook(hook(name)))
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(_example(model, input_size))
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return rows


def _layer_macs(row: LayerCost, cin: int, cout: int) -> int:
    if row.kind == "depthwise":
        return cout * row.per_pair
    return cin * cout * row.per_pair


def plan_macs(costs: Sequence[LayerCost], keep: dict[str, int] | None = None) -> int:
    """Multiply-adds of one image with ``keep`` (``{group: channels}``) applied; exact."""
    keep = keep or {}
    total = 0
    for r in costs:
        cin = keep.get(r.in_group, r.in_channels) if r.in_group else r.in_channels
        cout = keep.get(r.out_group, r.out_channels) if r.out_group else r.out_channels
        total += _layer_macs(r, cin, cout)
    return total


def count_macs(model: ReIDNet, input_size: tuple[int, int] | None = None) -> int:
    """Multiply-adds of one eval-mode forward pass (convs and linears; BN and ReLU excluded)."""
    return sum(
        _layer_macs(r, r.in_channels, r.out_channels)
        for r in layer_costs(model, groups=[], input_size=input_size)
    )


def keep_for_ratio(channels: int, ratio: float, round_to: int = 8) -> int:
    """Channels left after removing ``ratio`` of ``channels``, rounded to ``round_to``.

    Multiples of 8 keep the CPU kernels' vector lanes full; a group narrower than ``2 *
    round_to`` is rounded to whole channels instead. Never below one rounding unit.
    """
    if not 0.0 <= ratio < 1.0:
        raise ReidTraceError(
            f"pruning ratio must be in [0, 1), got {ratio!r}", hint="0.5 removes half"
        )
    step = round_to if channels >= 2 * round_to else 1
    keep = round(channels * (1.0 - ratio) / step) * step
    return int(min(channels, max(step, keep)))


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the wanted activation is captured."""


def _capture(model: nn.Module, layer: nn.Module, x: Tensor, want: str) -> Tensor:
    """The input (``want="in"``) or output of ``layer`` when ``model`` runs on ``x``."""
    got: list[Tensor] = []

    def hook(_m: nn.Module, inp: tuple, out: Tensor) -> None:
        got.append(inp[0] if want == "in" else out)
        raise _Stop

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not got:
        raise ValueError("the layer did not run in the forward pass")
    return got[0].detach().float()


def _sample_rows(
    pruned: ReIDNet,
    reference: ReIDNet,
    consumer: str,
    samples: Tensor,
    rows: int,
    gen: torch.Generator,
    batch_size: int = 32,
) -> tuple[Tensor, Tensor]:
    """``(X, Y)``: consumer input patches of ``pruned`` and the consumer output of ``reference``.

    X is ``(rows, C * kh * kw)`` (im2col of the consumer's input at sampled output positions),
    Y is ``(rows, out)``, bias removed, at the same images and positions.
    """
    conv_p = dict(pruned.named_modules())[consumer]
    conv_r = dict(reference.named_modules())[consumer]
    xs, ys = [], []
    batches = list(samples.split(batch_size))
    per_batch = -(-rows // len(batches))
    with torch.inference_mode():
        for b in batches:
            x = _capture(pruned, conv_p, b, "in")
            y = _capture(reference, conv_r, b, "out")
            cols = F.unfold(
                x, conv_p.kernel_size, conv_p.dilation, conv_p.padding, conv_p.stride
            )  # (n, C*k*k, L)
            n, _, positions = cols.shape
            if y.shape[2] * y.shape[3] != positions or y.shape[1] != conv_p.out_channels:
                raise ValueError(f"{consumer}: output {tuple(y.shape)} vs {positions} positions")
            pick = torch.randperm(n * positions, generator=gen)[:per_batch]
            img, pos = pick // positions, pick % positions
            xs.append(cols[img, :, pos])
            yy = y.flatten(2)[img, :, pos]
            if conv_r.bias is not None:
                yy = yy - conv_r.bias.detach().float()
            ys.append(yy)
    return torch.cat(xs), torch.cat(ys)


def _thinet_drop(x: Tensor, weight: Tensor, n_drop: int, gen: torch.Generator) -> Tensor:
    """Indices of the ``n_drop`` input channels whose removal least changes the output (greedy).

    ThiNet's objective: each sample row is one output position and one output channel (drawn at
    random), and channel c contributes ``z[r, c] = sum_k x[r, c, k] w[o_r, c, k]`` to it; the
    removed set T minimises ``sum_r (sum_{c in T} z[r, c])^2``. With the Gram matrix
    ``G = z^T z`` the greedy step adds the channel with the smallest ``G[c, c] + 2 sum_{d in T}
    G[c, d]``, so the whole selection costs one matrix product.
    """
    out_ch, in_ch = weight.shape[0], weight.shape[1]
    w = weight.detach().float().reshape(out_ch, in_ch, -1)
    xr = x.reshape(x.shape[0], in_ch, -1)
    o = torch.randint(out_ch, (x.shape[0],), generator=gen)
    z = torch.einsum("rck,rck->rc", xr, w[o])
    g = z.double().T @ z.double()
    cost_self = torch.diagonal(g).clone()
    acc = torch.zeros(in_ch, dtype=torch.float64)
    removed = torch.zeros(in_ch, dtype=torch.bool)
    order = []
    for _ in range(n_drop):
        cost = cost_self + 2.0 * acc
        cost[removed] = float("inf")
        c = int(torch.argmin(cost))
        removed[c] = True
        order.append(c)
        acc += g[:, c]
    return torch.tensor(sorted(order), dtype=torch.long)


def _refit(x: Tensor, y: Tensor, kept: Tensor, conv: nn.Conv2d) -> Tensor:
    """Least-squares consumer weights on the kept channels: ``min ||y - x_kept w^T||^2``.

    A small ridge term (1e-4 of the mean diagonal) keeps the normal equations solvable when the
    samples are fewer than the columns or channels are nearly collinear. No intercept: fitting
    the removed channels' mean offset too (into the next BatchNorm) was measured no better on
    held-out crops (docs/journal/compression_pruning.md).
    """
    kk = conv.kernel_size[0] * conv.kernel_size[1]
    cols = (kept[:, None] * kk + torch.arange(kk)[None, :]).reshape(-1)
    xk = x[:, cols].double()
    a = xk.T @ xk
    a += torch.eye(a.shape[0], dtype=a.dtype) * (1e-4 * torch.diagonal(a).mean().clamp_min(1e-12))
    w = torch.linalg.solve(a, xk.T @ y.double())  # (kept*kk, out)
    return w.T.reshape(conv.out_channels, len(kept), *conv.kernel_size).to(conv.weight.dtype)


def _rows_for(conv: nn.Module, keep: int) -> int:
    """Samples for one group: a few per refit column, within a budget of time and memory."""
    kk = conv.kernel_size[0] * conv.kernel_size[1]
    return int(min(16384, max(4096, 3 * keep * kk)))


def prune_model(
    model: ReIDNet,
    keep: dict[str, int],
    *,
    criterion: str = "l2",
    samples: Tensor | None = None,
    refit: bool = True,
    input_size: tuple[int, int] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> ReIDNet:
    """A pruned copy of ``model`` keeping ``keep[group]`` channels per group (others stay).

    ``criterion`` is ``"l1"``/``"l2"`` (weight magnitude) or ``"thinet"``, which needs
    ``samples`` (a normalised image batch, ``(n, 3, h, w)``; 32-256 crops of the training
    domain) and refits each group's consumer unless ``refit=False``. The input model is not
    changed; the copy is returned in eval mode.
    """
    model = _check_model(model)
    if criterion not in CRITERIA:
        raise ReidTraceError(
            f"unknown pruning criterion {criterion!r}", hint=f"use one of {', '.join(CRITERIA)}"
        )
    if criterion == "thinet" and (samples is None or len(samples) == 0):
        raise ReidTraceError(
            "the thinet criterion needs sample images to reconstruct from",
            hint="pass a folder of crops of the training domain, or use --criterion l2",
        )
    was_training = model.training
    reference = model.eval()
    pruned = copy.deepcopy(model).eval()
    groups = {g.name: g for g in find_groups(pruned, input_size)}
    unknown = sorted(set(keep) - set(groups))
    if unknown:
        raise ReidTraceError(
            f"{len(unknown)} pruning group(s) not in model {model.info.name!r}: {unknown[:3]}",
            hint="the plan was made for another architecture; run the budget search on this model",
        )
    for name, k in keep.items():
        if not (isinstance(k, int) and 1 <= k <= groups[name].channels):
            raise ReidTraceError(
                f"group {name!r} cannot keep {k!r} of {groups[name].channels} channels",
                hint="keep at least one channel and no more than the group has",
            )
    dg = _graph(pruned, input_size)
    modules = dict(pruned.named_modules())
    gen = torch.Generator().manual_seed(seed)
    todo = [g for g in groups.values() if keep.get(g.name, g.channels) < g.channels]
    for i, g in enumerate(todo):
        root, consumer = modules[g.name], modules[g.consumer]
        n_drop = g.channels - keep[g.name]
        if criterion == "thinet":
            rows = _rows_for(consumer, keep[g.name])
            x, y = _sample_rows(pruned, reference, g.consumer, samples, rows, gen)
            drop = _thinet_drop(x, consumer.weight, n_drop, gen)
            if refit:
                kept_mask = torch.ones(g.channels, dtype=torch.bool)
                kept_mask[drop] = False
                kept = kept_mask.nonzero().flatten()
                with torch.no_grad():
                    consumer.weight[:, kept] = _refit(x, y, kept, consumer)
        else:
            full = dg.get_pruning_group(root, tp.prune_conv_out_channels, list(range(g.channels)))
            imp = tp.importance.GroupMagnitudeImportance(p=1 if criterion == "l1" else 2)(full)
            drop = torch.argsort(imp)[:n_drop].sort().values
        dg.get_pruning_group(root, tp.prune_conv_out_channels, drop.tolist()).prune()
        if progress:
            progress(f"prune ({criterion})", i + 1, len(todo))
    model.train(was_training)
    return pruned


def reconstruction_error(pruned: ReIDNet, reference: ReIDNet, layer: str, samples: Tensor) -> float:
    """Relative squared error of module ``layer``'s output in ``pruned`` against ``reference``."""
    with torch.inference_mode():
        a = _capture(pruned.eval(), dict(pruned.named_modules())[layer], samples, "out")
        b = _capture(reference.eval(), dict(reference.named_modules())[layer], samples, "out")
    return float(((a - b) ** 2).sum() / (b**2).sum().clamp_min(1e-12))
