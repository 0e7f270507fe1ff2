"""Per-layer budget search: how much to prune each channel group under a MACs or latency budget.

1. **Sensitivity.** Each prunable group (``compression.prune.find_groups``) is pruned *alone* at a
   few ratios with the chosen criterion, and a fast validation proxy is measured: the mean
   cosine between the pruned and the original network's embeddings on sample crops
   (:func:`cosine_proxy`; no labels needed) or mAP on a Market-format folder
   (:func:`map_proxy`). The drop from the unpruned score is the group's sensitivity.
2. **Latency.** Each layer a group narrows is timed alone (PyTorch, one thread, batch 1, median
   of repeats) at full and at each pruned width; the difference is the group's measured saving.
   Only when the budget is a latency.
3. **Search.** Every group picks one ratio from a fine grid (drops interpolated between the
   measured ratios). Starting from the unpruned network, a greedy step takes the move, over all
   groups and larger ratios, with the least proxy drop per unit of cost saved (MACs counted
   exactly for the candidate widths, or the summed latency savings), until the budget holds:
   the usual approximation to this multiple-choice knapsack, exact on the convex hull of each
   group's curve. A budget below what the largest ratios reach is refused with one line.

A budget can also name the widths outright (``keep:GROUP=N,...``, :func:`parse_keep` and
:func:`keep_plan`): no sensitivity measurement and no search, the named groups keep exactly
``N`` channels and every other group stays whole. That is how a plan chosen by hand (e.g. to
cut parameters rather than MACs) goes through the same prune and report stages.

The result is a :class:`compression.plan.CompressionPlan`; its layers' ``precision`` stays
``"fp32"`` for the quantization stage to set.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from compression.plan import CompressionPlan, GroupRow, LayerRow
from compression.prune import (
    ChannelGroup,
    LayerCost,
    find_groups,
    keep_for_ratio,
    layer_costs,
    plan_macs,
    prune_model,
)
from reid.data.market import MarketDataset
from reid.errors import ReidTraceError
from reid.models import ReIDNet

__all__ = [
    "RATIOS",
    "cosine_proxy",
    "keep_plan",
    "map_proxy",
    "measure_latency",
    "measure_sensitivity",
    "parse_budget",
    "parse_keep",
    "search_plan",
]

RATIOS = (0.25, 0.5, 0.75, 0.9)
"""Ratios each group's sensitivity is measured at (the search interpolates between them)."""
GRID_STEP = 0.05
Score = Callable[[ReIDNet], float]
Progress = Callable[[str, int, int], None]
_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*(x|k|m|g|ms)?\s*$", re.IGNORECASE)
_UNITS = {None: 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_KEEP = re.compile(r"^\s*keep\s*:(.*)$", re.IGNORECASE | re.DOTALL)
_KEEP_HINT = "write keep:GROUP=N,GROUP=N,... (group names as in plan.json; N channels kept)"


def parse_keep(text: str) -> dict[str, int] | None:
    """``{group: channels kept}`` from ``"keep:GROUP=N,GROUP=N"``; ``None`` when ``text`` is
    not a ``keep:`` budget. Syntax, repeated groups and ``N < 1`` fail here with one line; group
    names and widths need the model (:func:`keep_plan` checks them)."""
    m = _KEEP.match(str(text))
    if m is None:
        return None
    keep: dict[str, int] = {}
    for item in (i.strip() for i in m.group(1).split(",")):
        name, sep, n = (x.strip() for x in item.partition("="))
        if not item or not sep or not name:
            raise ReidTraceError(f"cannot read {item!r} in budget {text!r}", hint=_KEEP_HINT)
        try:
            width = int(n)
        except ValueError as err:
            raise ReidTraceError(
                f"budget {text!r}: {name}={n!r} is not a whole number of channels",
                hint=_KEEP_HINT,
            ) from err
        if width <= 0:
            raise ReidTraceError(
                f"budget {text!r}: {name}={width} keeps no channels", hint="keep at least 1"
            )
        if name in keep:
            raise ReidTraceError(f"budget {text!r} names group {name!r} twice", hint=_KEEP_HINT)
        keep[name] = width
    return keep


def parse_budget(text: str, base_macs: int) -> tuple[str, float]:
    """``("macs", multiply-adds)`` or ``("latency", ms)`` from ``"0.25x"``, ``"50M"``, ``"8ms"``.

    ``Nx`` is a fraction of the unpruned MACs, ``N``/``Nk``/``NM``/``NG`` absolute MACs,
    ``Nms`` the batch-1 latency in milliseconds per image.
    """
    m = _BUDGET.match(str(text))
    if m is None or float(m.group(1)) <= 0:
        raise ReidTraceError(
            f"cannot read budget {text!r}",
            hint='give a MACs fraction ("0.25x"), MACs ("50M", "1.2G") or a latency ("8ms")',
        )
    value, unit = float(m.group(1)), (m.group(2) or "").lower() or None
    if unit == "ms":
        return "latency", value
    if unit == "x":
        if value > 1:
            raise ReidTraceError(
                f"budget {text!r} is more than the unpruned model", hint="use a fraction: 0.25x"
            )
        return "macs", value * base_macs
    return "macs", value * _UNITS[unit]


def cosine_proxy(reference: ReIDNet, images: Tensor, batch_size: int = 64) -> Score:
    """Score = mean cosine of a model's embeddings to ``reference``'s on ``images`` (1 = same).

    Needs no labels and moves smoothly with the damage, so small differences between groups
    show on 64-256 crops where mAP on so few would be noise.
    """

    def embed(m: ReIDNet) -> Tensor:
        was = m.training
        m.eval()
        try:
            with torch.inference_mode():
                return torch.cat([m(b) for b in images.split(batch_size)])
        finally:
            m.train(was)

    ref = embed(reference)

    def score(model: ReIDNet) -> float:
        return float((embed(model) * ref).sum(1).mean())

    return score


def map_proxy(dataset: MarketDataset, batch_size: int = 64) -> Score:
    """Score = mAP (percent) on the dataset's query/gallery split (the Market-1501 protocol)."""
    from reid.train.engine import evaluate  # the training engine's scorer (one protocol)

    def score(model: ReIDNet) -> float:
        return float(evaluate(model, dataset, batch_size=batch_size).mAP * 100.0)

    return score


def _key(ratio: float) -> str:
    return f"{ratio:g}"


def measure_sensitivity(
    model: ReIDNet,
    score: Score,
    *,
    groups: Sequence[ChannelGroup] | None = None,
    ratios: Sequence[float] = RATIOS,
    criterion: str = "l2",
    samples: Tensor | None = None,
    input_size: tuple[int, int] | None = None,
    round_to: int = 8,
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """``{group: {ratio: score drop}}`` with each group pruned alone (see the module docstring)."""
    groups = find_groups(model, input_size) if groups is None else groups
    base = score(model)
    out: dict[str, dict[str, float]] = {}
    total, done = len(groups) * len(ratios), 0
    for g in groups:
        row: dict[str, float] = {}
        for r in ratios:
            keep = keep_for_ratio(g.channels, r, round_to)
            if keep < g.channels:
                pruned = prune_model(
                    model,
                    {g.name: keep},
                    criterion=criterion,
                    samples=samples,
                    input_size=input_size,
                )
                row[_key(r)] = round(base - score(pruned), 6)
            else:
                row[_key(r)] = 0.0
            done += 1
            if progress:
                progress("sensitivity", done, total)
        out[g.name] = row
    return out


def _time_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(runs)


def measure_latency(
    model: ReIDNet, input_size: tuple[int, int] | None = None, repeats: int = 15
) -> float:
    """Median batch-1 latency of ``model`` in ms (eval, inference mode, current torch threads)."""
    h, w = input_size or model.info.input_size
    x = torch.randn(1, 3, h, w)
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return _time_ms(lambda: model(x), repeats)
    finally:
        model.train(was)


def _layer_ms(row: LayerCost, cin: int, cout: int, repeats: int) -> float:
    """One conv at these widths on a random batch-1 input, timed alone (weights random)."""
    if row.kind == "linear":
        return 0.0  # the embedding layers are never pruned: no saving to measure
    groups = 1
    if row.kind == "depthwise":
        cin = groups = cout
    conv = nn.Conv2d(
        cin, cout, row.kernel, stride=row.stride, padding=row.padding, groups=groups, bias=False
    ).eval()
    x = torch.randn(1, cin, *row.in_hw)
    with torch.inference_mode():
        return _time_ms(lambda: conv(x), repeats)


def measure_group_latency(
    costs: Sequence[LayerCost],
    groups: Sequence[ChannelGroup],
    ratios: Sequence[float] = RATIOS,
    *,
    round_to: int = 8,
    repeats: int = 9,
    progress: Progress | None = None,
) -> dict[str, dict[str, float]]:
    """``{group: {ratio: ms saved}}``: the group's layers timed alone, full minus pruned width."""
    out: dict[str, dict[str, float]] = {}
    for i, g in enumerate(groups):
        rows = [r for r in costs if g.name in (r.in_group, r.out_group)]
        full = sum(_layer_ms(r, r.in_channels, r.out_channels, repeats) for r in rows)
        saved: dict[str, float] = {}
        for ratio in ratios:
            k = keep_for_ratio(g.channels, ratio, round_to)
            t = sum(
                _layer_ms(
                    r,
                    k if r.in_group == g.name else r.in_channels,
                    k if r.out_group == g.name else r.out_channels,
                    repeats,
                )
                for r in rows
            )
            saved[_key(ratio)] = round(max(0.0, full - t), 4)
        out[g.name] = saved
        if progress:
            progress("latency", i + 1, len(groups))
    return out


def _interp(table: dict[str, float], grid: Sequence[float]) -> list[float]:
    """A group's measured curve (ratio 0 -> 0) interpolated linearly onto ``grid``."""
    xs = [0.0, *(float(k) for k in table)]
    ys = [0.0, *table.values()]
    order = np.argsort(xs)
    return list(np.interp(grid, np.asarray(xs)[order], np.asarray(ys)[order]))


def _greedy(
    n_options: int, drops: list[list[float]], cost: Callable[[list[int]], float], budget: float
) -> list[int] | None:
    """Option index per group minimising the summed drop with ``cost(choice) <= budget``."""
    choice = [0] * len(drops)
    current = cost(choice)
    while current > budget:
        best: tuple[float, int, int, float] | None = None
        for gi, curve in enumerate(drops):
            for j in range(choice[gi] + 1, n_options):
                trial = choice.copy()
                trial[gi] = j
                c = cost(trial)
                saved = current - c
                if saved <= 0:
                    continue
                eff = max(0.0, curve[j] - curve[choice[gi]]) / saved
                if best is None or eff < best[0]:
                    best = (eff, gi, j, c)
        if best is None:
            return None
        _, gi, j, current = best
        choice[gi] = j
    return choice


def search_plan(
    model: ReIDNet,
    budget: str,
    score: Score,
    *,
    criterion: str = "l2",
    samples: Tensor | None = None,
    proxy: str = "cosine",
    ratios: Sequence[float] = RATIOS,
    input_size: tuple[int, int] | None = None,
    round_to: int = 8,
    sensitivity: dict[str, dict[str, float]] | None = None,
    progress: Progress | None = None,
) -> CompressionPlan:
    """Measure, search and return the per-layer plan for ``model`` under ``budget``.

    ``sensitivity`` reuses an earlier measurement (same model, criterion and ratios). The MACs of
    the plan are exact; a latency plan's ``latency_ms`` is predicted from the measured savings
    (prune and :func:`measure_latency` to check it on the real network).
    """
    size = tuple(input_size or model.info.input_size)
    groups = find_groups(model, size)
    costs = layer_costs(model, groups, size)
    base_macs = plan_macs(costs)
    kind, target = parse_budget(budget, base_macs)
    if not ratios or any(not 0 < r < 1 for r in ratios):
        raise ReidTraceError(f"ratios must be in (0, 1), got {list(ratios)}", hint="e.g. 0.5")
    grid = [0.0] + [float(r) for r in np.arange(GRID_STEP, max(ratios) + 1e-9, GRID_STEP).round(4)]
    keeps = [[keep_for_ratio(g.channels, r, round_to) for r in grid] for g in groups]
    base_ms = latency = None
    if kind == "latency":
        base_ms = measure_latency(model, size)
        latency = measure_group_latency(costs, groups, ratios, round_to=round_to, progress=progress)
        saved = [_interp(latency[g.name], grid) for g in groups]

        def cost(choice: list[int]) -> float:
            return base_ms - sum(saved[i][j] for i, j in enumerate(choice))

        floor = cost([len(grid) - 1] * len(groups))
        unit = f"{target:g} ms"
        reach = f"{floor:.2f} ms (unpruned {base_ms:.2f} ms, batch 1, this CPU)"
    else:

        def cost(choice: list[int]) -> float:
            return plan_macs(
                costs,
                {g.name: keeps[i][j] for i, (g, j) in enumerate(zip(groups, choice, strict=True))},
            )

        floor = cost([len(grid) - 1] * len(groups))
        unit = f"{target / 1e6:.1f}M MACs"
        reach = f"{floor / 1e6:.1f}M MACs ({floor / base_macs:.3f}x of {base_macs / 1e6:.1f}M)"
    if floor > target:  # checked before the slow measurement: an impossible budget fails fast
        raise ReidTraceError(
            f"budget {budget!r} ({unit}) is below what pruning can reach: {reach}",
            hint="raise the budget; residual and embedding channels are never pruned",
        )
    if sensitivity is None:
        sensitivity = measure_sensitivity(
            model,
            score,
            groups=groups,
            ratios=ratios,
            criterion=criterion,
            samples=samples,
            input_size=size,
            round_to=round_to,
            progress=progress,
        )
    drops = [_interp(sensitivity[g.name], grid) for g in groups]
    choice = _greedy(len(grid), drops, cost, target)
    if choice is None:  # cannot happen when floor <= target; kept as a guard against bugs
        raise ValueError("greedy search failed although the floor is within budget")
    keep = {g.name: keeps[i][j] for i, (g, j) in enumerate(zip(groups, choice, strict=True))}
    rows = [
        GroupRow(
            name=g.name,
            consumer=g.consumer,
            channels=g.channels,
            keep=keep[g.name],
            sensitivity=sensitivity[g.name],
            latency_ms=(latency or {}).get(g.name, {}),
        )
        for g in groups
    ]
    layers = _layer_rows(costs, keep)
    return CompressionPlan(
        arch=model.info.name,
        input_size=(int(size[0]), int(size[1])),
        criterion=criterion,
        budget=str(budget),
        proxy=proxy,
        base_macs=int(base_macs),
        macs=int(plan_macs(costs, keep)),
        groups=rows,
        layers=layers,
        base_latency_ms=base_ms,
        latency_ms=cost(choice) if kind == "latency" else None,
        notes={"ratios": [float(r) for r in ratios], "grid_step": GRID_STEP, "round_to": round_to},
    )


def _layer_rows(costs: Sequence[LayerCost], keep: dict[str, int]) -> list[LayerRow]:
    """The plan's ``layers``: every weight layer with its widths and MACs under ``keep``."""
    layers = []
    for r in costs:
        cin = keep.get(r.in_group, r.in_channels) if r.in_group else r.in_channels
        cout = keep.get(r.out_group, r.out_channels) if r.out_group else r.out_channels
        layers.append(LayerRow(r.name, r.kind, cin, cout, plan_macs([r], keep)))
    return layers


def keep_plan(
    model: ReIDNet,
    budget: str,
    *,
    criterion: str = "l2",
    input_size: tuple[int, int] | None = None,
) -> CompressionPlan:
    """The plan of a ``keep:GROUP=N,...`` budget: exactly those widths, every other group
    whole, MACs counted exactly; no sensitivity measurement, no search (``proxy`` ``"none"``).

    An unknown group or a width above the group's channels fails with one line that lists the
    groups with their widths (or gives the width), before anything is measured or written.
    """
    keep = parse_keep(budget)
    if keep is None:
        raise ReidTraceError(f"budget {budget!r} is not a keep: budget", hint=_KEEP_HINT)
    size = tuple(input_size or model.info.input_size)
    groups = find_groups(model, size)
    by_name = {g.name: g for g in groups}
    unknown = [n for n in keep if n not in by_name]
    if unknown:
        listing = ", ".join(f"{g.name} ({g.channels})" for g in groups)
        raise ReidTraceError(
            f"budget names no channel group {unknown[0]!r} of {model.info.name}",
            hint=f"groups (channels): {listing}",
        )
    for name, n in keep.items():
        if n > by_name[name].channels:
            raise ReidTraceError(
                f"budget asks group {name!r} to keep {n} channels; it has {by_name[name].channels}",
                hint=f"use 1..{by_name[name].channels}",
            )
    full = {g.name: keep.get(g.name, g.channels) for g in groups}
    costs = layer_costs(model, groups, size)
    rows = [GroupRow(g.name, g.consumer, g.channels, full[g.name]) for g in groups]
    return CompressionPlan(
        arch=model.info.name,
        input_size=(int(size[0]), int(size[1])),
        criterion=criterion,
        budget=str(budget),
        proxy="none",
        base_macs=int(plan_macs(costs)),
        macs=int(plan_macs(costs, full)),
        groups=rows,
        layers=_layer_rows(costs, full),
        notes={"keep": dict(keep)},
    )
