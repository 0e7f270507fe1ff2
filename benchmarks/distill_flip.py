"""Fine-tune the shipped model as a one-pass student of its own flip-averaged embeddings.

Usage::

    python benchmarks/distill_flip.py --train TRAIN_MARKET --out DIR [--iters 400]
        [--max-minutes 25] [--lr 5e-5] [--threads 2] [--student PRUNED.pt] [--resume]

Student and teacher both start as the FP32 source (``load_checkpoint("default")``), or the
student as ``--student`` (e.g. a ``benchmarks/prune_light.py`` checkpoint); the
teacher's pooled features are averaged with its mirror image's (``teacher_flip``), the student
runs one pass. Terms: CE + triplet on the training identities of TRAIN_MARKET, ``embed`` and
``relational`` distillation at weight 1 (no logit or feature term). Writes DIR/last.pt and
DIR/noflip.onnx (no flip averaging in the graph) and prints the run summary as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from compression.distill import DistillConfig, distill_finetune
from reid.models import load_checkpoint
from reid.models.export import export_onnx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--max-minutes", type=float, default=25.0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--student", default="default", help="student checkpoint (default: shipped)")
    ap.add_argument("--resume", action="store_true", help="continue OUT/last.pt (same options)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    student, _ = load_checkpoint(args.student)
    teacher, _ = load_checkpoint("default")
    cfg = DistillConfig(
        iters=args.iters,
        max_minutes=args.max_minutes,
        lr=args.lr,
        logit_weight=0.0,
        feature_weight=0.0,
        embed_weight=1.0,
        relational_weight=1.0,
        teacher_flip=True,
        checkpoint_every=25,
        device="cpu",
        resume=args.resume,
    )
    summary = distill_finetune(student, teacher, args.train, args.out, cfg)
    model, _ = load_checkpoint(args.out / "last.pt")
    export_onnx(model.cpu(), args.out / "noflip.onnx", extra_metadata={"checkpoint": "last.pt"})
    print(json.dumps({k: v for k, v in summary.items() if k != "model"}, default=str))


if __name__ == "__main__":
    main()
