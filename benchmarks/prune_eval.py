"""Structured pruning without fine-tuning: uniform ratios vs the searched plan, magnitude vs ThiNet.

Usage::

    python benchmarks/prune_eval.py MARKET_DIR [--model imagenet|PATH] [--ids 50]
        [--samples 64] [--holdout 64] [--uniform 0.25,0.5,0.75] [--ratios 0.3,0.6,0.9]
        [--match 0.5] [--criteria l2,thinet] [--threads 2] [--out DIR]

``--model``: ``imagenet`` (MobileNetV2 x1.0 with its ImageNet weights, no ReID training) or any
path ``reid.models.load_checkpoint`` reads. From MARKET_DIR it takes ``--samples`` train crops
(ThiNet's reconstruction samples and the search's cosine proxy), ``--holdout`` query crops
(the reported feature cosine to the unpruned model) and the query/gallery images of the first
``--ids`` test identities (mAP, Market-1501 protocol). Rows: the unpruned model; each criterion
at each ``--uniform`` ratio; each criterion with the searched plan at the MACs of uniform
``--match``. Prints one JSON document and writes it, with the plans, to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from compression.prune import count_macs, find_groups, keep_for_ratio, prune_model
from compression.sensitivity import cosine_proxy, measure_latency, search_plan
from reid.data.market import MarketDataset, read_market
from reid.models import create_model, load_checkpoint
from reid.models.features import load_batch
from reid.train.engine import evaluate


def _progress(stage: str, done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)


def _subset(data: MarketDataset, ids: int) -> MarketDataset:
    keep = sorted({im.pid for im in data.query if im.pid > 0})[:ids]
    wanted = set(keep)
    return MarketDataset(
        root=data.root,
        train=[],
        query=[im for im in data.query if im.pid in wanted],
        gallery=[im for im in data.gallery if im.pid in wanted],
    )


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for k, p in model.named_parameters() if not k.startswith("classifier."))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("market", type=Path)
    ap.add_argument("--model", default="imagenet")
    ap.add_argument("--ids", type=int, default=50)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--holdout", type=int, default=64)
    ap.add_argument("--uniform", default="0.25,0.5,0.75")
    ap.add_argument("--ratios", default="0.3,0.6,0.9")
    ap.add_argument("--match", type=float, default=0.5)
    ap.add_argument("--criteria", default="l2,thinet")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--proxy", type=int, default=32, help="train crops for the search's proxy")
    ap.add_argument(
        "--map-all",
        action="store_true",
        help="mAP on every row, not only the unpruned, the --match uniform and the searched rows",
    )
    ap.add_argument("--no-map", action="store_true", help="skip mAP (cosine only)")
    ap.add_argument("--no-base", action="store_true", help="skip the unpruned row")
    ap.add_argument("--no-search", action="store_true", help="skip the searched rows")
    ap.add_argument("--out", type=Path, default=Path("/tmp/prune-eval-out"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t_start = time.perf_counter()
    if args.model == "imagenet":
        model = create_model("mobilenetv2_x1_0", imagenet=True).eval()
    else:
        model, _ = load_checkpoint(args.model)
    size = tuple(model.info.input_size)
    data = read_market(args.market)
    step = max(1, len(data.train) // args.samples)
    samples = load_batch([im.path for im in data.train[::step][: args.samples]], model.info)
    step = max(1, len(data.query) // args.holdout)
    holdout = load_batch([im.path for im in data.query[::step][: args.holdout]], model.info)
    test = _subset(data, args.ids)
    proxy = cosine_proxy(model, samples[: args.proxy])
    held = cosine_proxy(model, holdout)
    base_macs = count_macs(model, size)
    rows = []

    def row(name: str, criterion: str, m: torch.nn.Module, with_map: bool = True) -> None:
        macs = count_macs(m, size)
        r = {
            "name": name,
            "criterion": criterion,
            "gmacs": round(macs / 1e9, 4),
            "macs_x": round(macs / base_macs, 3),
            "params_m": round(_params(m) / 1e6, 3),
            "cosine_holdout": round(held(m), 4),
            "latency_ms_b1_torch": round(measure_latency(m, size, repeats=7), 1),
        }
        if with_map and not args.no_map:
            res = evaluate(m, test, batch_size=64)
            r["mAP"], r["rank1"] = round(res.mAP * 100, 2), round(res.cmc[0] * 100, 2)
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)

    if not args.no_base:
        row("unpruned", "-", model)
    groups = find_groups(model, size)
    criteria = args.criteria.split(",")
    uniform = [float(x) for x in args.uniform.split(",")]
    for crit in criteria:
        for ratio in uniform:
            keep = {g.name: keep_for_ratio(g.channels, ratio) for g in groups}
            pruned = prune_model(model, keep, criterion=crit, samples=samples, input_size=size)
            row(f"uniform {ratio:g}", crit, pruned, args.map_all or ratio == args.match)
    match_keep = {g.name: keep_for_ratio(g.channels, args.match) for g in groups}
    budget_macs = count_macs(prune_model(model, match_keep, input_size=size), size)
    budget = f"{budget_macs / 1e6:.3f}M"
    args.out.mkdir(parents=True, exist_ok=True)
    for crit in [] if args.no_search else criteria:
        t0 = time.perf_counter()
        plan = search_plan(
            model,
            budget,
            proxy,
            criterion=crit,
            samples=samples,
            ratios=[float(x) for x in args.ratios.split(",")],
            progress=_progress,
        )
        search_s = time.perf_counter() - t0
        plan.notes["search_seconds"] = round(search_s, 1)
        plan.save(args.out / f"plan_{crit}.json")
        pruned = prune_model(model, plan.keep(), criterion=crit, samples=samples, input_size=size)
        row(f"searched at uniform {args.match:g} MACs", crit, pruned)
    doc = {
        "model": args.model,
        "arch": model.info.name,
        "input_size": list(size),
        "market": str(args.market),
        "test_ids": args.ids,
        "num_query": len(test.query),
        "num_gallery": len(test.gallery),
        "samples": args.samples,
        "proxy_images": args.proxy,
        "holdout": args.holdout,
        "threads": args.threads,
        "budget": budget,
        "seconds": round(time.perf_counter() - t_start, 1),
        "rows": rows,
    }
    (args.out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
