"""Fine-tune a pruned student with knowledge distillation from the uncompressed teacher.

``distill_finetune(student, teacher, data, out, cfg)`` runs the bag-of-tricks objective of
``reid.train`` (label-smoothed CE after the BNNeck + batch-hard triplet before it) on the
training identities of a Market-format folder, plus up to four distillation terms, each with
its own weight in :class:`DistillConfig` (0 = off):

- **logit** (Hinton et al. 2015): ``T^2 * KL(softmax(t/T) || softmax(s/T))`` between the
  student's identity logits and the teacher's. The shipped teacher is an embedder with no
  classifier for these identities, so one is fitted first on its *frozen* eval-mode
  embeddings (a linear head, full-batch, on up to ``head_images_per_id`` crops per identity,
  features computed once): cheap, and the teacher's own feature space decides the soft labels.
- **feature** (FitNets, Romero et al. 2015): on chosen block outputs (forward hooks), a 1x1
  conv adapter maps the student's map to the teacher's width where they differ (identity where
  they agree, so the loss is exactly zero for an unchanged student); each sample's map is
  L2-normalised as a whole and the squared distance of the two unit maps is averaged over the
  batch (``2 - 2 cos``, in [0, 4]: scale-free, so layers of different magnitude weigh alike).
- **embed**: the same normalised squared distance on the pooled, pre-BNNeck global feature
  (a linear adapter when dimensions differ; pruning keeps the embedding, so usually none).
- **relational** (``reid.train.losses.relational_loss``): the batch's pairwise-cosine matrix of
  the student's global features against the teacher's.

The teacher runs in eval mode under ``torch.no_grad`` and never receives gradients; adapters
are trained with the student and saved in its checkpoint (they are thrown away at export).

Run folder (``out``)::

    OUT/config.json  the DistillConfig and what the run resolved (layers, widths, device)
    OUT/log.csv      one row per checkpoint: step, epoch, mean losses since the last row, lr,
                     images_per_s, seconds
    OUT/last.pt      student + optimizer + schedule + adapters + teacher head (atomic write,
                     ``reid.models.save_checkpoint``; pruned widths recorded), what ``resume``
                     continues and what ``reidtrace export`` exports
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reid.data.market import read_market
from reid.errors import ReidTraceError
from reid.models import ReIDNet, extract_features, load_checkpoint, onnx_import, save_checkpoint
from reid.train.data import TrainImages, make_loader, train_transform
from reid.train.engine import LRSchedule, pick_device
from reid.train.losses import ReidLoss, relational_loss
from reid.train.runlog import append_row, check_run_folder, seed_everything

__all__ = [
    "DistillConfig",
    "Distiller",
    "default_feature_layers",
    "distill_finetune",
    "feature_loss",
    "fit_teacher_head",
    "logit_loss",
]

Progress = Callable[[str, int, int], None]
LOG_FIELDS = (
    "step", "epoch", "loss", "ce", "triplet", "logit", "feature", "embed", "relational", "lr",
    "images_per_s", "seconds",
)  # fmt: skip
_TERMS = ("logit", "feature", "embed", "relational")


@dataclass
class DistillConfig:
    """One fine-tuning run. Bounded by ``iters`` (batches in all) or else ``epochs``, and by
    ``max_minutes`` of wall time; whichever comes first ends it (with a checkpoint)."""

    epochs: int = 10
    iters: int | None = None
    max_minutes: float | None = None
    batch_size: int = 32
    num_instances: int = 4
    max_images_per_epoch: int | None = None
    lr: float = 1e-4  # fine-tuning a trained network: below the recipe's 3.5e-4 from scratch
    classifier_lr: float = 1e-3  # the fresh identity head learns faster than the backbone
    weight_decay: float = 5e-4
    warmup_iters: int = 0
    margin: float = 0.3
    label_smooth: bool = True
    logit_weight: float = 1.0
    temperature: float = 4.0
    feature_weight: float = 1.0
    feature_layers: tuple[str, ...] | None = None  # None: default_feature_layers(student)
    embed_weight: float = 1.0
    relational_weight: float = 1.0
    teacher_flip: bool = False
    """Teacher features of each image averaged with its mirror image's (the shipped export's
    flip averaging): a one-pass student learns the two-pass teacher's embedding."""
    head_images_per_id: int = 4
    head_steps: int = 300
    recalibrate_bn: bool = True  # ONNX-imported students have folded (identity) BatchNorms
    checkpoint_every: int = 50  # batches between checkpoints (and log rows)
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    resume: bool = False

    @property
    def uses_teacher(self) -> bool:
        return any(getattr(self, f"{t}_weight") > 0 for t in _TERMS)

    def validate(self) -> DistillConfig:
        checks: list[tuple[bool, str, str]] = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}", "try 10"),
            (self.iters is None or self.iters >= 1, f"iters must be >= 1, got {self.iters}", ""),
            (
                self.max_minutes is None or self.max_minutes > 0,
                f"max_minutes must be > 0, got {self.max_minutes}",
                "leave it unset for no time limit",
            ),
            (self.num_instances >= 2, f"num_instances must be >= 2, got {self.num_instances}", ""),
            (
                self.batch_size >= 2 * self.num_instances
                and self.batch_size % self.num_instances == 0,
                f"batch_size {self.batch_size} must be a multiple of num_instances "
                f"{self.num_instances}, at least two identities",
                "try batch_size 32 with num_instances 4",
            ),
            (self.lr > 0 and self.classifier_lr > 0, "learning rates must be > 0", ""),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}", "try 4"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1", ""),
            (
                not (self.teacher_flip and self.feature_weight > 0),
                "teacher_flip averages pooled features only; feature maps of a mirror image "
                "do not line up with the student's",
                "set feature_weight 0 with teacher_flip",
            ),
            (self.head_images_per_id >= 1 and self.head_steps >= 1, "head fitting needs >= 1", ""),
        ]
        for t in _TERMS:
            w = getattr(self, f"{t}_weight")
            checks.append((w >= 0 and math.isfinite(w), f"{t}_weight must be >= 0, got {w}", ""))
        for ok, msg, hint in checks:
            if not ok:
                raise ReidTraceError(msg, hint=hint or None)
        return self


# --- the losses ---------------------------------------------------------------------------


def _unit_sqdist(s: Tensor, t: Tensor) -> Tensor:
    """Mean over the batch of ``||s/|s| - t/|t|||^2`` of each sample's flattened tensor."""
    s = F.normalize(s.float().flatten(1), dim=1)
    t = F.normalize(t.float().flatten(1), dim=1)
    return (s - t).pow(2).sum(dim=1).mean()


def feature_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Squared distance of L2-normalised maps (or vectors), per sample, averaged over the batch.

    Zero when equal up to a positive per-sample scale; the shapes must agree (adapt first).
    """
    if student.shape != teacher.shape:
        raise ValueError(f"feature shapes differ: {tuple(student.shape)} vs {tuple(teacher.shape)}")
    return _unit_sqdist(student, teacher)


def logit_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """Hinton's KD: ``T^2 * KL(softmax(teacher/T) || softmax(student/T))``, batch mean."""
    t = F.log_softmax(teacher.float() / temperature, dim=1)
    s = F.log_softmax(student.float() / temperature, dim=1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2


def default_feature_layers(model: ReIDNet) -> tuple[str, ...]:
    """Three evenly spaced stage outputs of the backbone (a quarter, half, three quarters in).

    Stages are the backbone's top-level children other than pooling and heads (MobileNetV2:
    conv1..conv9 -> conv3, conv5, conv7): deep enough to carry identity, early enough that the
    pooled-feature terms do not already cover them.
    """
    skip = {"global_avgpool", "fc", "classifier", "dropout"}
    stages = [n for n, _ in model.backbone.named_children() if n not in skip]
    if len(stages) < 4:
        return ()
    picks = sorted({len(stages) // 4, len(stages) // 2, (3 * len(stages)) // 4})
    return tuple(f"backbone.{stages[i]}" for i in picks)


@contextmanager
def _hooks(model: nn.Module, layers: tuple[str, ...], store: dict[str, Tensor]) -> Iterator[None]:
    modules = dict(model.named_modules())

    def grab(name: str) -> Callable:
        def hook(_m: nn.Module, _inp: tuple, out: Tensor) -> None:
            store[name] = out

        return hook

    handles = [modules[n].register_forward_hook(grab(n)) for n in layers]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _layer_widths(model: ReIDNet, layers: tuple[str, ...], x: Tensor) -> dict[str, int]:
    store: dict[str, Tensor] = {}
    was = model.training
    model.eval()
    try:
        with _hooks(model, layers, store), torch.no_grad():
            model.global_feature(x)
    finally:
        model.train(was)
    return {n: int(store[n].shape[1]) for n in layers}


def fit_teacher_head(
    feats: Tensor, labels: Tensor, num_classes: int, *, steps: int = 300, seed: int = 0
) -> nn.Linear:
    """A bias-free linear identity head on frozen unit embeddings (full-batch Adam, CE).

    Written here because it is six lines: the teacher's own feature space decides the soft
    labels, and nothing of the teacher changes.
    """
    gen = torch.Generator().manual_seed(seed)
    head = nn.Linear(feats.shape[1], num_classes, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(num_classes, feats.shape[1], generator=gen) * 0.01)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(head(feats), labels).backward()
        opt.step()
    head.requires_grad_(False)
    return head.eval()


class Distiller(nn.Module):
    """The distillation terms between a student and a frozen teacher, with their adapters.

    ``forward(images, labels)`` runs both networks (student in its current mode, teacher in
    eval mode without gradients) and returns ``(total, parts)``; ``parts`` holds each loss
    unweighted and detached (``ce``, ``triplet``, and every enabled distillation term).
    """

    def __init__(
        self,
        student: ReIDNet,
        teacher: ReIDNet | None,
        cfg: DistillConfig,
        num_classes: int,
        *,
        layers: tuple[str, ...] = (),
        teacher_head: nn.Linear | None = None,
        example: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        if student.num_classes != num_classes:  # a fresh identity head for these identities
            student.classifier = nn.Linear(student.embed_dim, num_classes, bias=False)
            nn.init.normal_(student.classifier.weight, std=0.001)  # as in the recipe
        self.student = student
        self.teacher = [teacher]  # a list: not a submodule (never trained, never saved)
        self.criterion = ReidLoss(
            num_classes, student.embed_dim, margin=cfg.margin, label_smooth=cfg.label_smooth
        )
        self.layers = layers if cfg.feature_weight > 0 else ()
        self.adapters = nn.ModuleDict()
        self.teacher_head = teacher_head
        if teacher is not None:  # its forward runs under no_grad: nothing reaches it
            teacher.eval()
        if teacher is not None and self.layers:
            if example is None:
                raise ValueError("feature distillation needs an example batch to size adapters")
            sw = _layer_widths(student, self.layers, example)
            tw = _layer_widths(teacher, self.layers, example)
            for n in self.layers:
                key = n.replace(".", "__")
                self.adapters[key] = (
                    nn.Identity() if sw[n] == tw[n] else nn.Conv2d(sw[n], tw[n], 1, bias=False)
                )
        if teacher is not None and cfg.embed_weight > 0:
            # pruning keeps the embedding, so this is normally the identity
            s_dim = student.backbone.feature_dim
            t_dim = teacher.backbone.feature_dim
            self.embed_adapter: nn.Module = (
                nn.Identity() if s_dim == t_dim else nn.Linear(s_dim, t_dim, bias=False)
            )
        else:
            self.embed_adapter = nn.Identity()

    def adapter_state(self) -> dict[str, Tensor]:
        return {
            **{f"adapters.{k}": v for k, v in self.adapters.state_dict().items()},
            **{f"embed_adapter.{k}": v for k, v in self.embed_adapter.state_dict().items()},
        }

    def load_adapter_state(self, state: dict[str, Tensor]) -> None:
        self.adapters.load_state_dict(
            {k.removeprefix("adapters."): v for k, v in state.items() if k.startswith("adapters.")}
        )
        self.embed_adapter.load_state_dict(
            {
                k.removeprefix("embed_adapter."): v
                for k, v in state.items()
                if k.startswith("embed_adapter.")
            }
        )

    def forward(self, images: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.cfg
        teacher = self.teacher[0]
        s_maps: dict[str, Tensor] = {}
        with _hooks(self.student, self.layers, s_maps):
            feat = self.student.global_feature(images)
        neck = self.student.bnneck(feat)
        logits = self.student.classifier(neck)
        total, parts = self.criterion(logits, feat, labels)
        if teacher is None or not cfg.uses_teacher:
            return total, parts
        t_maps: dict[str, Tensor] = {}
        with torch.no_grad(), _hooks(teacher, self.layers, t_maps):
            t_feat = teacher.global_feature(images)
            t_emb = F.normalize(teacher.bnneck(t_feat), dim=1)
            if cfg.teacher_flip:  # as the export's flip: normalised sum of both embeddings
                f_feat = teacher.global_feature(images.flip(3))
                f_emb = F.normalize(teacher.bnneck(f_feat), dim=1)
                t_feat = (t_feat + f_feat) / 2
                t_emb = F.normalize(t_emb + f_emb, dim=1)
        if cfg.logit_weight > 0:
            if self.teacher_head is None:
                raise ValueError("logit distillation needs the fitted teacher head")
            with torch.no_grad():
                t_logits = self.teacher_head(t_emb)
            parts["logit"] = logit_loss(logits, t_logits, cfg.temperature)
            total = total + cfg.logit_weight * parts["logit"]
        if self.layers:
            terms = [
                feature_loss(self.adapters[n.replace(".", "__")](s_maps[n]), t_maps[n])
                for n in self.layers
            ]
            parts["feature"] = torch.stack(terms).mean()
            total = total + cfg.feature_weight * parts["feature"]
        if cfg.embed_weight > 0:
            parts["embed"] = feature_loss(self.embed_adapter(feat), t_feat)
            total = total + cfg.embed_weight * parts["embed"]
        if cfg.relational_weight > 0:
            parts["relational"] = relational_loss(feat, t_feat)
            total = total + cfg.relational_weight * parts["relational"]
        return total, {k: v.detach() for k, v in parts.items()}


# --- the run ------------------------------------------------------------------------------


def _check_models(student: nn.Module, teacher: nn.Module | None, cfg: DistillConfig) -> None:
    if not isinstance(student, ReIDNet):
        raise ReidTraceError(
            f"the student must be a reidtrace ReIDNet, got {type(student).__name__}",
            hint="load it with reid.models.load_checkpoint (pruned checkpoints included)",
        )
    if teacher is None:
        if cfg.uses_teacher:
            raise ReidTraceError(
                "distillation weights are set but no teacher was given",
                hint="pass the uncompressed model as teacher, or set every *_weight to 0",
            )
        return
    if not isinstance(teacher, ReIDNet):
        raise ReidTraceError(
            f"the teacher must be a reidtrace ReIDNet, got {type(teacher).__name__}",
            hint='load it with reid.models.load_checkpoint (e.g. "default")',
        )
    for what in ("input_size", "mean", "std"):
        s, t = getattr(student.info, what), getattr(teacher.info, what)
        if tuple(s) != tuple(t):
            raise ReidTraceError(
                f"student and teacher expect different {what.replace('_', ' ')}: "
                f"{tuple(s)} vs {tuple(t)}",
                hint="distil from a teacher that reads the same crops as the student",
            )


def _append_log(path: Path, row: dict[str, Any]) -> None:
    append_row(path, LOG_FIELDS, row)


def _truncate_log(path: Path, upto: int) -> None:
    """Drop rows after step ``upto`` (written after the checkpoint that resume reads)."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= upto]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _teacher_head(
    teacher: ReIDNet, train_set: TrainImages, cfg: DistillConfig, progress: Progress | None
) -> nn.Linear:
    by_label: dict[int, list[str]] = {}
    for path, label, _cam in train_set.items:
        by_label.setdefault(label, []).append(path)
    paths, labels = [], []
    for label, ps in sorted(by_label.items()):
        step = max(1, len(ps) // cfg.head_images_per_id)
        for p in ps[::step][: cfg.head_images_per_id]:
            paths.append(p)
            labels.append(label)
    feats = extract_features(teacher, paths, 64, progress=progress, stage="teacher features")
    return fit_teacher_head(
        torch.from_numpy(feats),
        torch.tensor(labels),
        train_set.num_classes,
        steps=cfg.head_steps,
        seed=cfg.seed,
    )


def distill_finetune(
    student: ReIDNet,
    teacher: ReIDNet | None,
    data: str | Path,
    out: str | Path,
    cfg: DistillConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fine-tune ``student`` on the training split of ``data``; returns a summary dict.

    ``teacher=None`` (with every distillation weight 0) is plain CE + triplet fine-tuning, the
    baseline distillation is measured against. The student gets a fresh identity classifier
    for the training identities; its backbone, BNNeck and embedding keep their weights.
    ``out/last.pt`` is written every ``checkpoint_every`` batches and at the end;
    ``cfg.resume`` continues from it (student, optimizer, schedule, adapters, teacher head).
    The ``student`` object itself is trained in place on fresh runs; on resume the checkpoint's
    copy is trained instead (returned in the summary as ``model``).
    """
    cfg = (cfg or DistillConfig()).validate()
    _check_models(student, teacher, cfg)
    out = Path(out)
    last = check_run_folder(out, cfg.resume, what="a fine-tuning run", options=False)
    layers: tuple[str, ...] = ()
    if teacher is not None and cfg.feature_weight > 0:
        layers = cfg.feature_layers or default_feature_layers(student)
        known = dict(student.named_modules())
        t_known = dict(teacher.named_modules())
        missing = [n for n in layers if n not in known or n not in t_known]
        if missing:
            raise ReidTraceError(
                f"feature layer(s) {missing} not in both student and teacher",
                hint=f"e.g. {', '.join(default_feature_layers(student)) or 'backbone stages'}",
            )
    dataset = read_market(data)
    train_set = TrainImages(dataset.train, train_transform(student.info))
    if len(train_set) == 0:
        raise ReidTraceError(
            f"the training split of {str(dataset.root)!r} holds no identities",
            hint="pass a Market-format folder whose bounding_box_train/ has labelled people",
        )
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    loader, sampler = make_loader(
        train_set,
        batch_size=cfg.batch_size,
        num_instances=cfg.num_instances,
        workers=cfg.workers,
        seed=cfg.seed,
        limit=cfg.max_images_per_epoch,
        pin_memory=device.type == "cuda",
    )
    per_epoch = sampler.plan()
    if per_epoch == 0:
        raise ReidTraceError(
            f"the training split of {str(dataset.root)!r} fills no batch of {cfg.batch_size}",
            hint="use a smaller batch_size or more images",
        )
    total_steps = cfg.iters if cfg.iters is not None else cfg.epochs * per_epoch

    meta = None
    if cfg.resume:
        student, meta = load_checkpoint(last, for_training=True)
        _check_models(student, teacher, cfg)  # the saved student, not the one passed in
        if meta["extra"].get("pids") != sorted(train_set.pid_to_label):
            raise ReidTraceError(
                f"resume: the run in {str(out)!r} was trained on other identities than "
                f"{str(data)!r}",
                hint="resume with the same data as the run",
            )
    elif cfg.recalibrate_bn:
        gen = torch.Generator().manual_seed(cfg.seed)
        n = min(256, len(train_set))
        picks = torch.randperm(len(train_set), generator=gen)[:n].tolist()
        batches = (
            torch.stack([train_set[i][0] for i in picks[j : j + 64]]) for j in range(0, n, 64)
        )
        onnx_import.recalibrate_batchnorm(student, batches)

    head = None
    if teacher is not None and cfg.logit_weight > 0:
        if meta is not None and "teacher_head" in meta["extra"]:
            head = nn.Linear(teacher.embed_dim, train_set.num_classes, bias=False)
            head.load_state_dict(meta["extra"]["teacher_head"])
            head.requires_grad_(False).eval()
        else:
            head = _teacher_head(teacher, train_set, cfg, progress)
    example = train_set[0][0][None]
    distiller = Distiller(
        student, teacher, cfg, train_set.num_classes, layers=layers, teacher_head=head,
        example=example,
    )  # fmt: skip
    if meta is not None:
        distiller.load_adapter_state(meta["extra"].get("adapters", {}))
    distiller.to(device)
    if teacher is not None:
        teacher.to(device)
    if head is not None:
        head.to(device)

    head_params = list(student.classifier.parameters())
    head_ids = {id(p) for p in head_params}
    body = [p for p in student.parameters() if p.requires_grad and id(p) not in head_ids]
    body += [p for p in distiller.adapters.parameters()]
    body += [p for p in distiller.embed_adapter.parameters()]
    optimizer = torch.optim.Adam(
        [{"params": body, "lr": cfg.lr}, {"params": head_params, "lr": cfg.classifier_lr}],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    schedule = LRSchedule(cfg.lr, total_steps, cfg.warmup_iters, "cosine")
    step = 0
    if meta is not None:
        optimizer.load_state_dict(meta["optimizer"])
        schedule.load_state_dict(meta["scheduler"] or {})
        step = int(meta["extra"]["step"])
        seed_everything(cfg.seed + step)  # other batches than the ones already seen
        _truncate_log(out / "log.csv", step)
        if step >= total_steps:
            raise ReidTraceError(
                f"resume: the run already finished {step} of {total_steps} batches",
                hint="raise iters (or epochs) to train further",
            )

    out.mkdir(parents=True, exist_ok=True)
    resolved = {
        **asdict(cfg),
        "feature_layers": list(layers),
        "adapters": {k: type(m).__name__ for k, m in distiller.adapters.items()},
        "device": str(device),
        "total_steps": total_steps,
        "batches_per_epoch": per_epoch,
        "num_classes": train_set.num_classes,
        "train_images": len(train_set),
        "teacher": None if teacher is None else teacher.info.name,
        "student": student.info.name,
        "resumed_from_step": step if cfg.resume else None,
    }
    (out / "config.json").write_text(json.dumps(resolved, indent=2, default=str) + "\n")

    def scale_lr(position: float) -> None:
        factor = schedule.factor(position)
        schedule.position = position
        optimizer.param_groups[0]["lr"] = cfg.lr * factor
        optimizer.param_groups[1]["lr"] = cfg.classifier_lr * factor

    def checkpoint(epoch: int) -> None:
        extra = {
            "step": step,
            "config": {k: v for k, v in asdict(cfg).items() if not isinstance(v, tuple)},
            "feature_layers": list(layers),
            "pids": sorted(train_set.pid_to_label),
            "adapters": {k: v.detach().cpu() for k, v in distiller.adapter_state().items()},
        }
        if head is not None:
            extra["teacher_head"] = {k: v.detach().cpu() for k, v in head.state_dict().items()}
        save_checkpoint(
            last, student, epoch=epoch, optimizer=optimizer, scheduler=schedule, extra=extra
        )

    deadline = None if cfg.max_minutes is None else time.monotonic() + 60 * cfg.max_minutes
    sums: dict[str, float] = {}
    seen, batches, t0, start_step = 0, 0, time.perf_counter(), step
    losses: list[float] = []
    stopped = "budget"
    student.train()
    while step < total_steps:
        epoch = step // per_epoch
        sampler.plan()
        for imgs, labels, _ in loader:
            scale_lr(step)
            imgs = imgs.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            loss, parts = distiller(imgs, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise RuntimeError(f"loss became {value} at batch {step}")
            losses.append(value)
            step += 1
            seen += len(imgs)
            batches += 1
            sums["loss"] = sums.get("loss", 0.0) + value
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if progress:
                progress("fine-tune", step, total_steps)
            timed_out = deadline is not None and time.monotonic() >= deadline
            if step % cfg.checkpoint_every == 0 or step >= total_steps or timed_out:
                seconds = time.perf_counter() - t0
                n = max(1, batches)
                row = {
                    "step": step,
                    "epoch": epoch + 1,
                    **{k: round(v / n, 6) for k, v in sums.items()},
                    "lr": f"{optimizer.param_groups[0]['lr']:.3g}",
                    "images_per_s": round(seen / max(seconds, 1e-9), 2),
                    "seconds": round(seconds, 2),
                }
                checkpoint(epoch + 1)
                _append_log(out / "log.csv", row)
                sums, seen, batches, t0 = {}, 0, 0, time.perf_counter()
            if timed_out:
                stopped = "max_minutes"
                break
            if step >= total_steps:
                break
        if stopped == "max_minutes":
            break
    student.eval()
    return {
        "out": str(out),
        "last": str(last),
        "log": str(out / "log.csv"),
        "steps": step,
        "start_step": start_step,
        "total_steps": total_steps,
        "stopped": stopped if step < total_steps else "done",
        "device": str(device),
        "feature_layers": list(layers),
        "batch_losses": losses,
        "model": student,
    }
