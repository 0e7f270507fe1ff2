"""The one place reidtrace imports torchreid from.

Importing torchreid warns that its Cython rank metrics are unavailable; we score with
``reid.evaluate.protocol`` and never use them, and the warning would add a line to every one-line
CLI error. It is silenced here, for this import only (not process-wide).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Cython evaluation", category=UserWarning)
    import torchreid.reid  # noqa: F401  (imports the whole package: models, losses, data)

from torchreid.reid.data.sampler import RandomIdentitySampler
from torchreid.reid.losses import CrossEntropyLoss, TripletLoss
from torchreid.reid.models import build_model
from torchreid.reid.models.mobilenetv2 import MobileNetV2
from torchreid.reid.models.resnet import Bottleneck, ResNet

__all__ = [
    "Bottleneck",
    "CrossEntropyLoss",
    "MobileNetV2",
    "RandomIdentitySampler",
    "ResNet",
    "TripletLoss",
    "build_model",
]
