"""``TrainConfig``: every knob of a training run, as plain data (saved as ``RUN/config.json``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from reid.errors import ReidTraceError

__all__ = ["AUGMENT_PRESETS", "DomainAugment", "TrainConfig", "resolve_augment"]

RECIPE_EPOCHS = 120
"""The bag-of-tricks schedule is written for 120 epochs; shorter runs scale its parts."""
RECIPE_WARMUP = 10


@dataclass(frozen=True)
class DomainAugment:
    """Strengths of the domain augmentations (``reid.train.data.train_transform``); 0 = off.

    Rendered people have flat, camera-independent colours; real cameras shift colour, contrast,
    sharpness and resolution. These make the synthetic crops vary the same ways, so the model
    cannot rely on absolute colour alone (docs/journal/reid_generalisation.md measures each).

    - ``color_jitter``: brightness, contrast and saturation factors in [1-s, 1+s], hue shift up
      to s/6 (at most 0.05 turns), applied to 80% of crops.
    - ``camera_response``: per-channel gains in [1-s, 1+s] (white balance) and a gamma in
      [1/(1+s), 1+s] (tone curve), every crop.
    - ``grayscale``: probability of a grey (3-channel) crop.
    - ``blur``: probability of a gaussian blur, sigma 0.3-1.5 px at 256x128 (scaled with size).
    - ``low_res``: probability of shrinking to 30-100% of the input size and back (lost detail).
    """

    color_jitter: float = 0.0
    camera_response: float = 0.0
    grayscale: float = 0.0
    blur: float = 0.0
    low_res: float = 0.0

    def is_off(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))


AUGMENT_PRESETS: dict[str, DomainAugment] = {
    "none": DomainAugment(),
    "domain": DomainAugment(
        color_jitter=0.3, camera_response=0.2, grayscale=0.2, blur=0.2, low_res=0.2
    ),
}
"""``--augment NAME``: a set of domain augmentations; options given one by one override it."""


def resolve_augment(preset: str = "none", **overrides: float | None) -> DomainAugment:
    """The preset's augmentations with every override that is not None put in its place."""
    if preset not in AUGMENT_PRESETS:
        raise ReidTraceError(
            f"unknown augmentation preset {preset!r}",
            hint=f"use one of {', '.join(AUGMENT_PRESETS)}",
        )
    known = {f.name for f in fields(DomainAugment)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"not domain augmentations: {unknown}")
    given = {k: float(v) for k, v in overrides.items() if v is not None}
    return replace(AUGMENT_PRESETS[preset], **given)


@dataclass
class TrainConfig:
    """A training run: the bag-of-tricks recipe (Luo et al. 2019) with its published defaults.

    ``warmup`` and the step milestones scale with ``epochs`` (10 of 120 epochs, steps at 40 and
    70 of 120) unless ``warmup`` is given. ``imagenet=None`` means "ImageNet init where this
    machine has the weights" (MobileNetV2 only). ``workers``/``threads`` None pick the fastest
    setting measured on a 2-core CPU (see ``data.py``).
    """

    data: Path
    arch: str
    out: Path
    epochs: int = RECIPE_EPOCHS
    batch_size: int = 64
    num_instances: int = 4
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup: float | None = None  # epochs of linear warm-up from lr/10; None = scaled 10/120
    schedule: Literal["cosine", "step"] = "cosine"
    margin: float = 0.3
    label_smooth: bool = True
    center_loss_weight: float = 0.0  # 5e-4 in the paper's full recipe; 0 = off
    eval_every: int = 10  # epochs between evaluations (and at the last epoch); 0 = never
    eval_flip: bool = False
    seed: int = 0
    imagenet: bool | None = None
    weights: Path | None = None  # start from these weights (torchreid zoo or ours)
    max_images_per_epoch: int | None = None
    stop_after: int | None = None  # end after this epoch; the schedule still spans ``epochs``
    resume: bool = False
    device: str = "auto"
    workers: int | None = None
    threads: int | None = None
    channels_last: bool = True
    # domain augmentations (see DomainAugment; all off = the bag-of-tricks list alone)
    color_jitter: float = 0.0
    camera_response: float = 0.0
    grayscale: float = 0.0
    blur: float = 0.0
    low_res: float = 0.0
    # relational distillation from the frozen ImageNet MobileNetV2 (reid.train.losses); 0 = off
    distill_weight: float = 0.0

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        self.out = Path(self.out)
        if self.weights is not None:
            self.weights = Path(self.weights)

    @property
    def augment(self) -> DomainAugment:
        """The domain augmentations of this run."""
        return DomainAugment(**{f.name: getattr(self, f.name) for f in fields(DomainAugment)})

    @property
    def warmup_epochs(self) -> float:
        """Warm-up length in epochs: given, or the recipe's 10/120 of the run."""
        if self.warmup is not None:
            return float(self.warmup)
        return RECIPE_WARMUP * self.epochs / RECIPE_EPOCHS

    def validate(self) -> TrainConfig:
        """Check the values a user can get wrong; each problem is one ReidTraceError."""
        checks: list[tuple[bool, str, str]] = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}", "try --epochs 60"),
            (
                self.num_instances >= 2,
                f"num_instances must be >= 2 (the triplet loss needs positives), "
                f"got {self.num_instances}",
                "use 4, as in the recipe",
            ),
            (
                self.batch_size >= 2 * self.num_instances
                and self.batch_size % self.num_instances == 0,
                f"batch size {self.batch_size} must be a multiple of num_instances "
                f"{self.num_instances} holding at least 2 identities",
                "use 64 (16 identities x 4 images)",
            ),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}", "use 3.5e-4"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}", ""),
            (
                self.warmup is None or 0 <= self.warmup <= self.epochs,
                f"warmup must be in 0..epochs ({self.epochs}), got {self.warmup}",
                "leave it unset to scale the recipe's 10 of 120 epochs",
            ),
            (
                self.schedule in ("cosine", "step"),
                f"schedule must be 'cosine' or 'step', got {self.schedule!r}",
                "use cosine",
            ),
            (self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}", "try 10"),
            (
                self.stop_after is None or 1 <= self.stop_after <= self.epochs,
                f"stop_after must be in 1..epochs ({self.epochs}), got {self.stop_after}",
                "leave it unset to train the whole schedule",
            ),
            (
                self.max_images_per_epoch is None or self.max_images_per_epoch >= self.batch_size,
                f"max_images_per_epoch must be >= the batch size {self.batch_size}, "
                f"got {self.max_images_per_epoch}",
                "leave it unset for whole epochs",
            ),
            (
                self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                f"device must be auto, cpu or cuda, got {self.device!r}",
                "use --device auto",
            ),
            (
                self.workers is None or self.workers >= 0,
                f"workers must be >= 0, got {self.workers}",
                "leave it unset",
            ),
            (
                self.threads is None or self.threads >= 1,
                f"threads must be >= 1, got {self.threads}",
                "leave it unset",
            ),
            (
                self.center_loss_weight >= 0,
                f"center loss weight must be >= 0, got {self.center_loss_weight}",
                "use 5e-4, or 0 to turn it off",
            ),
            (
                math.isfinite(self.distill_weight) and self.distill_weight >= 0,
                f"distillation weight must be >= 0, got {self.distill_weight}",
                "try 1.0, or 0 to turn it off",
            ),
            (
                math.isfinite(self.color_jitter) and 0 <= self.color_jitter < 1,
                f"color_jitter must be in [0, 1), got {self.color_jitter}",
                "try 0.3, or 0 to turn it off",
            ),
            (
                math.isfinite(self.camera_response) and 0 <= self.camera_response < 1,
                f"camera_response must be in [0, 1), got {self.camera_response}",
                "try 0.2, or 0 to turn it off",
            ),
        ]
        for name in ("grayscale", "blur", "low_res"):
            value = getattr(self, name)
            checks.append(
                (
                    math.isfinite(value) and 0 <= value <= 1,
                    f"{name} is a probability and must be in [0, 1], got {value}",
                    "try 0.1, or 0 to turn it off",
                )
            )
        for ok, message, hint in checks:
            if not ok:
                raise ReidTraceError(message, hint=hint or None)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as strings)."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
