"""``train(cfg)``: one training run, written to a run folder that ``--resume`` continues.

Run folder::

    RUN/config.json   the TrainConfig (rewritten on resume, with the epoch resumed from)
    RUN/log.csv       one row per epoch: epoch, loss, ce, triplet, distill, lr, images_per_s,
                      seconds, mAP, rank1 (the last two only when evaluated)
    RUN/last.pt       model + optimizer + schedule after the latest epoch (atomic write)
    RUN/best.pt       the evaluated epoch with the highest mAP

Evaluation embeds the dataset's query and gallery with the eval-mode model and scores cosine
distances with ``reid.evaluate.protocol.evaluate_rank`` (the Market-1501 protocol).

With ``distill_weight > 0`` a frozen ImageNet MobileNetV2 (the teacher) embeds every training
batch too, and the relational loss (``reid.train.losses``) keeps the student's pairwise
similarities near the teacher's; ``distill`` in the log is that loss before weighting.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reid.data.market import MarketDataset, read_market
from reid.errors import ReidTraceError
from reid.evaluate.protocol import RankResult, cosine_distmat, evaluate_rank
from reid.models import (
    ReIDNet,
    create_model,
    extract_features,
    load_checkpoint,
    load_weights,
    model_info,
    onnx_import,
    save_checkpoint,
)
from reid.models.registry import build_backbone
from reid.train.config import RECIPE_EPOCHS, TrainConfig
from reid.train.data import TrainImages, default_threads, make_loader, train_transform
from reid.train.losses import ImagenetTeacher, ReidLoss, RelationalDistill
from reid.train.runlog import append_row, check_run_folder, seed_everything

__all__ = ["LRSchedule", "evaluate", "pick_device", "train"]

Progress = Callable[[str, int, int], None]
LOG_FIELDS = (
    "epoch", "loss", "ce", "triplet", "distill", "lr", "images_per_s", "seconds", "mAP", "rank1"
)  # fmt: skip
TEACHER_ARCH = "mobilenetv2_x1_0"
"""The distillation teacher: the one backbone with real ImageNet weights on hand."""


@dataclass
class LRSchedule:
    """Linear warm-up from ``lr/10`` over ``warmup`` epochs, then cosine or step decay.

    Positions are fractional epochs, set before every batch, so short runs get a smooth
    warm-up. Step decay divides by 10 at 40/120 and 70/120 of the run (the recipe's epochs
    40 and 70); cosine decays to 1% of ``lr``. The state is the position, for resuming.
    """

    base_lr: float
    epochs: int
    warmup: float
    kind: str = "cosine"
    position: float = 0.0

    def factor(self, e: float) -> float:
        if self.warmup > 0 and e < self.warmup:
            return 0.1 + 0.9 * e / self.warmup
        if self.kind == "step":
            milestones = (self.epochs * 40 / RECIPE_EPOCHS, self.epochs * 70 / RECIPE_EPOCHS)
            return 0.1 ** sum(e >= m for m in milestones)
        span = max(self.epochs - self.warmup, 1e-9)
        t = min(max((e - self.warmup) / span, 0.0), 1.0)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))

    def set(self, optimizer: torch.optim.Optimizer, e: float) -> float:
        """Move to fractional epoch ``e``; returns the learning rate now in use."""
        self.position = e
        lr = self.base_lr * self.factor(e)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "warmup": self.warmup}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = float(state.get("position", 0.0))


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; asking for CUDA without one is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ReidTraceError(
            f"--device {name} asked for, but no CUDA device is available",
            hint="use --device auto (CPU here) or --device cpu",
        )
    return torch.device(name)


def evaluate(
    model: ReIDNet,
    dataset: MarketDataset,
    *,
    batch_size: int = 128,
    flip: bool = False,
    progress: Progress | None = None,
) -> RankResult:
    """mAP/CMC of ``model`` on the dataset's query vs gallery (Market-1501 protocol)."""
    q = extract_features(
        model,
        [im.path for im in dataset.query],
        batch_size,
        flip=flip,
        progress=progress,
        stage="embed query",
    )
    g = extract_features(
        model,
        [im.path for im in dataset.gallery],
        batch_size,
        flip=flip,
        progress=progress,
        stage="embed gallery",
    )
    q_pids, q_camids = dataset.arrays("query")
    g_pids, g_camids = dataset.arrays("gallery")
    return evaluate_rank(cosine_distmat(q, g), q_pids, g_pids, q_camids, g_camids)


def _check_run_folder(cfg: TrainConfig) -> Path:
    return check_run_folder(cfg.out, cfg.resume, what="a training run")


def _read_log(path: Path, upto: int) -> list[dict[str, str]]:
    """Rows of an earlier run's log up to epoch ``upto`` (later ones were never checkpointed)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) <= upto]


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _append_log(path: Path, row: dict[str, Any]) -> None:
    append_row(path, LOG_FIELDS, row)


RECALIBRATION_IMAGES = 256
"""Training crops whose statistics replace the folded BatchNorms' after an ONNX import."""


def _start_weights(model: ReIDNet, weights: Path, train_set: TrainImages) -> str:
    """Load ``--weights`` into ``model``; an ONNX export (or ``default``) is unfolded first.

    An imported export has identity BatchNorms (its statistics were folded into the convs), so
    they are re-estimated on training crops, keeping the network's function, before the first
    step normalises with batch statistics (``onnx_import.recalibrate_batchnorm``).
    """
    if not onnx_import.is_onnx_weights(weights):
        return load_weights(model, weights).summary()
    source, _ = onnx_import.import_onnx(weights)
    if source.info.name != model.info.name:
        raise ReidTraceError(
            f"--weights {str(weights)!r} holds a {source.info.name!r} model, not "
            f"{model.info.name!r}",
            hint=f"use --arch {source.info.name}",
        )
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("classifier.")}
    model.load_state_dict(state, strict=False)
    gen = torch.Generator().manual_seed(0)
    n = min(RECALIBRATION_IMAGES, len(train_set))
    picks = torch.randperm(len(train_set), generator=gen)[:n].tolist()
    batches = (torch.stack([train_set[i][0] for i in picks[j : j + 64]]) for j in range(0, n, 64))
    layers = onnx_import.recalibrate_batchnorm(model, batches)
    where = str(onnx_import.resolve_onnx_path(weights))
    return (
        f"imported {len(state)} tensors from ONNX file {where!r}; "
        f"BatchNorm statistics of {layers} layers re-estimated on {n} training crops"
    )


def train(cfg: TrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Train ``cfg.arch`` on the Market-format folder ``cfg.data``; returns a summary dict.

    Writes ``last.pt`` and a ``log.csv`` row every epoch and ``best.pt`` whenever an evaluation
    beats the best mAP so far. ``resume`` continues from ``last.pt`` (model, optimizer, schedule
    and best score) at the next epoch; bit-identical results to an uninterrupted run are not
    promised (data order differs).
    """
    cfg.validate()
    info = model_info(cfg.arch)  # unknown names fail before any data is read
    last_path = _check_run_folder(cfg)
    dataset = read_market(cfg.data)
    train_set = TrainImages(dataset.train, train_transform(info, cfg.augment))
    if len(train_set) == 0:
        raise ReidTraceError(
            f"the training split of {str(dataset.root)!r} holds no identities (only 0 / -1)",
            hint="train on a folder whose bounding_box_train/ has labelled people",
        )
    device = pick_device(cfg.device)
    auto_workers, auto_threads = default_threads(device)
    workers = auto_workers if cfg.workers is None else cfg.workers
    threads_before = torch.get_num_threads()
    torch.set_num_threads(auto_threads if cfg.threads is None else cfg.threads)
    try:
        return _train(cfg, progress, dataset, train_set, device, workers, last_path)
    finally:
        torch.set_num_threads(threads_before)  # the caller's process, as it was


def _train(
    cfg: TrainConfig,
    progress: Progress | None,
    dataset: MarketDataset,
    train_set: TrainImages,
    device: torch.device,
    workers: int,
    last_path: Path,
) -> dict[str, Any]:
    info = model_info(cfg.arch)
    seed_everything(cfg.seed)
    imagenet = cfg.imagenet
    if imagenet is None:  # ImageNet init where the weights exist, unless starting from others
        imagenet = info.family == "mobilenetv2" and cfg.weights is None

    start_epoch, best_map, best_epoch, meta, weights_report = 1, -1.0, 0, None, None
    if cfg.resume:
        model, meta = load_checkpoint(last_path, for_training=True)
        if model.info.name != cfg.arch:
            raise ReidTraceError(
                f"--resume: {str(last_path)!r} is a run of {model.info.name!r}, not {cfg.arch!r}",
                hint=f"resume with --arch {model.info.name}",
            )
        pids = meta["extra"].get("pids")
        if pids != sorted(train_set.pid_to_label) or model.num_classes != train_set.num_classes:
            raise ReidTraceError(
                f"--resume: the run was trained on {model.num_classes} other identities than "
                f"the {train_set.num_classes} in {str(cfg.data)!r}",
                hint="resume with the same --data as the run",
            )
        start_epoch = int(meta["epoch"]) + 1
        seed_everything(cfg.seed + start_epoch - 1)  # other batches than the first epochs drew
        best_map = float(meta["extra"].get("best_mAP", -1.0))
        best_epoch = int(meta["extra"].get("best_epoch", 0))
        if start_epoch > cfg.epochs:
            raise ReidTraceError(
                f"--resume: the run already finished epoch {start_epoch - 1} of --epochs "
                f"{cfg.epochs}",
                hint=f"pass --epochs larger than {start_epoch - 1} to train further",
            )
    else:
        model = create_model(cfg.arch, num_classes=train_set.num_classes, imagenet=imagenet)
        if cfg.weights is not None:
            weights_report = _start_weights(model, cfg.weights, train_set)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)

    distill = None
    if cfg.distill_weight > 0:  # built after the student: it must not shift the student's init
        teacher = ImagenetTeacher(build_backbone(TEACHER_ARCH, imagenet=True)).to(device)
        if cfg.channels_last:
            teacher.to(memory_format=torch.channels_last)
        distill = RelationalDistill(teacher, cfg.distill_weight)

    criterion = ReidLoss(
        train_set.num_classes,
        info.embed_dim,
        margin=cfg.margin,
        label_smooth=cfg.label_smooth,
        center_weight=cfg.center_loss_weight,
        use_gpu=device.type == "cuda",
    ).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    center_opt = criterion.center_optimizer()
    schedule = LRSchedule(cfg.lr, cfg.epochs, cfg.warmup_epochs, cfg.schedule)
    if meta is not None:
        optimizer.load_state_dict(meta["optimizer"])
        schedule.load_state_dict(meta["scheduler"] or {})
        extra = meta["extra"]
        if criterion.center is not None and "center" in extra:
            criterion.center.load_state_dict(extra["center"])

    loader, sampler = make_loader(
        train_set,
        batch_size=cfg.batch_size,
        num_instances=cfg.num_instances,
        workers=workers,
        seed=cfg.seed + start_epoch,
        limit=cfg.max_images_per_epoch,
        pin_memory=device.type == "cuda",
    )
    cfg.out.mkdir(parents=True, exist_ok=True)
    log_path = cfg.out / "log.csv"
    history = _read_log(log_path, start_epoch - 1)
    _write_log(log_path, history)
    run_cfg = {
        **cfg.to_dict(),
        "resumed_from_epoch": start_epoch - 1 if cfg.resume else None,
        "num_classes": train_set.num_classes,
        "train_images": len(train_set),
        "model": info.to_dict(),
        "imagenet_init": bool(imagenet) and not cfg.resume,
        "device": str(device),
        "workers": workers,
        "threads": torch.get_num_threads(),
        "weights": weights_report,
    }
    (cfg.out / "config.json").write_text(json.dumps(run_cfg, indent=2, sort_keys=True) + "\n")

    batch_losses: list[float] = []
    rows: list[dict[str, Any]] = []
    last_epoch = cfg.stop_after or cfg.epochs
    for epoch in range(start_epoch, last_epoch + 1):
        model.train()
        n_batches = sampler.plan()
        if progress:  # two reused bars (epochs, batches of this one), not one bar per epoch
            progress("epochs", epoch - 1, cfg.epochs)
        sums = {"loss": 0.0, "ce": 0.0, "triplet": 0.0, "distill": 0.0}
        seen, lr = 0, 0.0
        t0 = time.perf_counter()
        for i, (imgs, labels, _) in enumerate(loader):
            lr = schedule.set(optimizer, epoch - 1 + i / max(n_batches, 1))
            imgs = imgs.to(device, non_blocking=True)
            if cfg.channels_last:
                imgs = imgs.contiguous(memory_format=torch.channels_last)
            labels = labels.to(device, non_blocking=True)
            logits, feat = model(imgs)
            loss, parts = criterion(logits, feat, labels)
            if distill is not None:
                weighted, parts["distill"] = distill(imgs, feat)
                loss = loss + weighted
            optimizer.zero_grad(set_to_none=True)
            if center_opt is not None:
                center_opt.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if center_opt is not None:
                criterion.unscale_center_grads()
                center_opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise RuntimeError(f"loss became {value} at epoch {epoch}, batch {i}")
            batch_losses.append(value)
            sums["loss"] += value * len(imgs)
            sums["ce"] += float(parts["ce"]) * len(imgs)
            sums["triplet"] += float(parts["triplet"]) * len(imgs)
            sums["distill"] += float(parts.get("distill", 0.0)) * len(imgs)
            seen += len(imgs)
            if progress:
                progress("batches", i + 1, n_batches)
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch,
            **{k: round(v / max(seen, 1), 6) for k, v in sums.items()},
            "lr": f"{lr:.3g}",
            "images_per_s": round(seen / max(seconds, 1e-9), 2),
            "seconds": round(seconds, 2),
            "mAP": "",
            "rank1": "",
        }
        evaluated = cfg.eval_every > 0 and (epoch % cfg.eval_every == 0 or epoch == last_epoch)
        result = None
        if evaluated:
            result = evaluate(model, dataset, flip=cfg.eval_flip, progress=progress)
            row["mAP"] = round(100 * result.mAP, 4)
            row["rank1"] = round(100 * result.rank1, 4)
        is_best = result is not None and result.mAP > best_map
        if is_best:
            best_map, best_epoch = result.mAP, epoch
        extra = {
            "best_mAP": best_map,
            "best_epoch": best_epoch,
            "config": cfg.to_dict(),
            "pids": sorted(train_set.pid_to_label),
            "metrics": result.as_percent() if result is not None else None,
        }
        if criterion.center is not None:
            extra["center"] = criterion.center.state_dict()
        ckpt = {"epoch": epoch, "optimizer": optimizer, "scheduler": schedule, "extra": extra}
        save_checkpoint(last_path, model, **ckpt)
        if is_best:
            save_checkpoint(cfg.out / "best.pt", model, **ckpt)
        _append_log(log_path, row)
        rows.append(row)
        if progress:
            progress("epochs", epoch, cfg.epochs)

    return {
        "run": str(cfg.out),
        "arch": cfg.arch,
        "device": str(device),
        "epochs": cfg.epochs,
        "start_epoch": start_epoch,
        "num_classes": train_set.num_classes,
        "train_images": len(train_set),
        "workers": workers,
        "threads": torch.get_num_threads(),
        "imagenet_init": bool(imagenet) and not cfg.resume,
        "weights": weights_report,
        "best_mAP": round(100 * best_map, 4) if best_epoch else None,
        "best_epoch": best_epoch or None,
        "last": str(last_path),
        "best": str(cfg.out / "best.pt") if best_epoch else None,
        "log": str(log_path),
        "epochs_run": rows,
        "batch_losses": batch_losses,
    }
