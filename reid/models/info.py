"""``ModelInfo``: the facts every caller of a registered model needs, as plain data.

Its own module, below everything else in ``reid.models``: the registry creates it, ``ReIDNet``
carries it, checkpoints store it, and none of them has to import another to get it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from reid.embed.model_file import IMAGENET_MEAN, IMAGENET_STD  # one definition, torch-free

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ModelInfo"]


@dataclass(frozen=True)
class ModelInfo:
    """What every caller of a registered model needs to know, stored in each checkpoint."""

    name: str  # the registry name, e.g. "osnet_x0_25_128x64"
    family: str  # "osnet", "resnet", "mobilenetv2": which filter_state_dict adapts checkpoints
    network: str  # the builder; names sharing it have identical weights (only input size differs)
    input_size: tuple[int, int]  # (height, width) the model is trained and embedded at
    mean: tuple[float, float, float]  # RGB, for inputs scaled to [0, 1]
    std: tuple[float, float, float]
    embed_dim: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples become lists) for checkpoints, JSON and ONNX metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
