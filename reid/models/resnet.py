"""ResNet-50 with last stride 1, the "bag of tricks" baseline backbone.

Last stride 1 doubles the final feature map (16x8 at 256x128), a cheap gain in ReID accuracy
(Luo et al. 2019). Built with torchreid's ``ResNet`` class as ``resnet50_fc512`` is, minus the
fc layer, so the feature is the 2048-d pooled map. Parameter shapes do not depend on the stride,
so torchreid ``resnet50`` zoo checkpoints and torchvision ImageNet files load too.
"""

from __future__ import annotations

from torch import Tensor, nn

from reid.models.registry import register_model
from reid.models.torchreid_zoo import Bottleneck, ResNet
from reid.models.weights import standard_filter

__all__ = ["filter_state_dict", "resnet50"]


def filter_state_dict(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Also drops ``fc.weight``/``fc.bias``: torchvision's ImageNet classifier (ours has no fc)."""
    return standard_filter(state, drop_keys=("fc.weight", "fc.bias"))


@register_model(
    input_size=(128, 64), embed_dim=2048, filter_fn=filter_state_dict, name="resnet50_128x64"
)
@register_model(input_size=(256, 128), embed_dim=2048, filter_fn=filter_state_dict)
def resnet50() -> nn.Module:
    """ResNet-50, last stride 1, no fc: 23.5 M parameters."""
    return ResNet(
        num_classes=1,
        loss="softmax",
        block=Bottleneck,
        layers=[3, 4, 6, 3],
        last_stride=1,
        fc_dims=None,
        dropout_p=None,
    )
