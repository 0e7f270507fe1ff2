"""A light ThiNet prune of the shipped model for file size: only the named groups, then export.

Usage::

    python benchmarks/prune_light.py --train TRAIN_MARKET --keep GROUP=N[,GROUP=N...]
        [--samples 64] [--threads 2] --out OUT.pt [--onnx OUT.onnx] [--flip]

The FP32 source model (``load_checkpoint("default")``) keeps every group at full width except the
ones in ``--keep``, pruned by ThiNet with its least-squares refit on ``--samples`` crops of the
training split of TRAIN_MARKET (never the test splits), in forward order. Writes the pruned
checkpoint and, with ``--onnx``, its ONNX export (one pass a crop unless ``--flip``). Prints
parameters and MACs before and after as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from compression.prune import count_macs, find_groups, prune_model
from reid.data.market import read_market
from reid.models import load_checkpoint, save_checkpoint
from reid.models.export import export_onnx
from reid.models.features import load_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--keep", required=True, help="GROUP=N,... channels kept per group")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--onnx", type=Path, default=None)
    ap.add_argument("--flip", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    teacher, _ = load_checkpoint("default")
    groups = {g.name: g for g in find_groups(teacher)}
    keep: dict[str, int] = {}
    for item in args.keep.split(","):
        name, n = item.split("=")
        if name not in groups:
            raise SystemExit(f"error: no group {name!r}; groups: {', '.join(groups)}")
        keep[name] = int(n)
    train = read_market(args.train).train
    step = max(1, len(train) // args.samples)
    samples = load_batch([im.path for im in train[::step][: args.samples]], teacher.info)
    t = time.time()
    pruned = prune_model(teacher, keep, criterion="thinet", samples=samples)
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    save_checkpoint(args.out, pruned, epoch=0)
    row = {
        "keep": keep,
        "params": params(pruned),
        "params_teacher": params(teacher),
        "macs": count_macs(pruned),
        "macs_teacher": count_macs(teacher),
        "prune_s": round(time.time() - t, 1),
    }
    if args.onnx:
        export_onnx(pruned, args.onnx, flip=args.flip, extra_metadata={"checkpoint": args.out.name})
        row["onnx_bytes"] = args.onnx.stat().st_size
    print(json.dumps(row))


if __name__ == "__main__":
    main()
