"""``create_model``: a registered name -> a ``ReIDNet``, optionally with weights loaded.

Above the registry, the network and the weight loader, which it combines: training,
evaluation, ONNX export and ``compression/`` build every model through it.
"""

from __future__ import annotations

from pathlib import Path

from reid.errors import ReidTraceError
from reid.models.net import ReIDNet
from reid.models.registry import build_backbone, model_info
from reid.models.weights import load_weights

__all__ = ["create_model"]


def create_model(
    name: str,
    *,
    num_classes: int = 1,
    weights: str | Path | None = None,
    imagenet: bool = False,
) -> ReIDNet:
    """Build the registered model ``name`` as a :class:`~reid.models.net.ReIDNet`.

    ``num_classes`` sizes the identity classifier (training only; 1 for embedding). ``weights``
    is our checkpoint or a torchreid model-zoo file (see :func:`reid.models.weights.load_weights`;
    a classifier of another size is dropped). ``imagenet`` initialises the backbone from the
    ImageNet weights available offline (MobileNetV2 only).
    """
    info = model_info(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ReidTraceError(
            f"num_classes must be a positive integer, got {num_classes!r}",
            hint="use the number of training identities (1 when only embedding)",
        )
    model = ReIDNet(build_backbone(name, imagenet=imagenet), info, num_classes=num_classes)
    if weights is not None:
        load_weights(model, weights)
    return model
