"""Fine-tuning the ThiNet-pruned shipped model with and without distillation, at one budget.

Usage::

    python benchmarks/distill_eval.py --train TRAIN_MARKET --eval EVAL_MARKET --row ROW
        [--student PRUNED.pt] [--ratio 0.5] [--samples 32] [--ids 40] [--iters 100]
        [--batch-size 32] [--max-minutes 20] [--out DIR]

``--student``: the pruned student; written first (ThiNet, uniform ``--ratio`` of every
block-internal width, ``--samples`` crops of TRAIN_MARKET) when the file does not exist yet.
The teacher is the FP32 source model (``load_checkpoint("default")``). ``--row``: ``before`` (the
pruned student, no fine-tuning), ``teacher`` (the unpruned model), ``none`` (CE + triplet
only), ``all`` (every distillation term at weight 1), or one term alone (``logit``,
``feature``, ``embed``, ``relational``). Fine-tuning rows run ``--iters`` batches on the training
identities of TRAIN_MARKET; every row scores mAP / rank-1 (Market-1501 protocol, no flip) on the
query/gallery of the first ``--ids`` test identities of EVAL_MARKET. Prints one JSON line and
writes it to ``OUT/ROW.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from compression.distill import DistillConfig, distill_finetune
from compression.prune import count_macs, find_groups, keep_for_ratio, prune_model
from reid.data.market import MarketDataset, read_market
from reid.models import load_checkpoint, save_checkpoint
from reid.models.features import load_batch
from reid.train.engine import evaluate

TERMS = ("logit", "feature", "embed", "relational")
ROWS = ("before", "teacher", "none", "all", *TERMS)


def _progress(stage: str, done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)


def _subset(data: MarketDataset, ids: int) -> MarketDataset:
    wanted = set(sorted({im.pid for im in data.query if im.pid > 0})[:ids])
    return MarketDataset(
        root=data.root,
        train=[],
        query=[im for im in data.query if im.pid in wanted],
        gallery=[im for im in data.gallery if im.pid in wanted],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--row", choices=ROWS, required=True)
    ap.add_argument("--student", type=Path, default=Path("/tmp/distill-runs/pruned.pt"))
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--ids", type=int, default=40)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/distill-runs"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    teacher, _ = load_checkpoint("default")
    if not args.student.is_file():
        train = read_market(args.train).train
        step = max(1, len(train) // args.samples)
        samples = load_batch([im.path for im in train[::step][: args.samples]], teacher.info)
        keep = {g.name: keep_for_ratio(g.channels, args.ratio) for g in find_groups(teacher)}
        pruned = prune_model(teacher, keep, criterion="thinet", samples=samples, progress=_progress)
        save_checkpoint(args.student, pruned, epoch=0)
    student, _ = load_checkpoint(args.student, for_training=True)
    evalset = _subset(read_market(args.eval), args.ids)
    result = {
        "row": args.row,
        "eval_ids": args.ids,
        "query": len(evalset.query),
        "gallery": len(evalset.gallery),
        "gmacs": round(count_macs(student) / 1e9, 4),
    }
    t0 = time.perf_counter()
    if args.row in ("before", "teacher"):
        model = student if args.row == "before" else teacher
    else:
        weights = {t: float(args.row in (t, "all")) for t in TERMS}
        cfg = DistillConfig(
            iters=args.iters,
            max_minutes=args.max_minutes,
            batch_size=args.batch_size,
            lr=args.lr,
            checkpoint_every=25,
            device="cpu",
            **{f"{t}_weight": w for t, w in weights.items()},
        )
        run = args.out / f"run-{args.row}"
        summary = distill_finetune(
            student,
            teacher if args.row != "none" else None,
            args.train,
            run,
            cfg,
            progress=_progress,
        )
        model = summary["model"]
        result.update(steps=summary["steps"], stopped=summary["stopped"], lr=args.lr)
        result["train_minutes"] = round((time.perf_counter() - t0) / 60, 2)
    score = evaluate(model.eval(), evalset, flip=False, progress=_progress)
    result.update(mAP=round(100 * score.mAP, 2), rank1=round(100 * score.rank1, 2))
    result["minutes"] = round((time.perf_counter() - t0) / 60, 2)
    line = json.dumps(result)
    (args.out / f"{args.row}.json").write_text(line + "\n")
    print(line, flush=True)


if __name__ == "__main__":
    main()
