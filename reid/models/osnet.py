"""OSNet (Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification", ICCV 2019).

torchreid's own ReID architecture: 512-d features from a small network, the family the product
compresses. Registered at the standard 256x128 and at 128x64 for fast CPU training.
"""

from __future__ import annotations

from torch import Tensor, nn

from reid.models.registry import register_model
from reid.models.torchreid_zoo import build_model
from reid.models.weights import standard_filter

__all__ = ["filter_state_dict", "osnet_x0_25", "osnet_x1_0"]


def filter_state_dict(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """torchreid OSNet checkpoints (zoo or ImageNet): strip ``module.``, drop the ID head."""
    return standard_filter(state)


@register_model(
    input_size=(128, 64), embed_dim=512, filter_fn=filter_state_dict, name="osnet_x1_0_128x64"
)
@register_model(input_size=(256, 128), embed_dim=512, filter_fn=filter_state_dict)
def osnet_x1_0() -> nn.Module:
    """OSNet x1.0: 2.2 M parameters, the torchreid reference model."""
    return build_model("osnet_x1_0", 1, loss="softmax", pretrained=False, use_gpu=False)


@register_model(
    input_size=(128, 64), embed_dim=512, filter_fn=filter_state_dict, name="osnet_x0_25_128x64"
)
@register_model(input_size=(256, 128), embed_dim=512, filter_fn=filter_state_dict)
def osnet_x0_25() -> nn.Module:
    """OSNet x0.25: 0.2 M parameters, a quarter of the channels of x1.0."""
    return build_model("osnet_x0_25", 1, loss="softmax", pretrained=False, use_gpu=False)
