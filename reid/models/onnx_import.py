"""ONNX -> PyTorch for our own exports: the shipped model back as a trainable network.

The bundled ``reid/weights/source_fp32.onnx`` is the only copy of the shipped model's FP32
weights (it was trained on a lent GPU whose checkpoint did not survive; the default embedder
``default.onnx`` is its INT8 compression, which cannot be rebuilt: :func:`import_onnx` refuses
quantized files). Adaptation, fine-tuning and compression all need the weights in PyTorch, so
this module rebuilds them from the file: the exporter folded every BatchNorm into the conv
before it (weight scaled, bias added), kept the BNNeck as a node, and wrapped the net in flip
averaging (one pass over ``[x, mirror(x)]``, so each conv appears once).

Rebuilding: the registry's architecture (the ``arch`` metadata field) is created, its convs are
matched to the file's Conv nodes in order, with a shape check on every tensor, and each conv's
BatchNorm becomes the identity plus the folded bias (running mean 0, variance ``1 - eps``,
weight 1). The eval-mode network then computes the file's function, which
:func:`import_onnx` verifies against ONNX Runtime (cosine >= 0.9999). Training such a network
would normalise with batch statistics it was never fitted to, so :func:`recalibrate_batchnorm`
re-estimates them on sample images while keeping the eval-mode function exactly.

Only architectures whose every conv is followed by its BatchNorm (``FOLDABLE``) are accepted:
for those the mapping is unambiguous. Hand-written because no maintained converter restores
torchreid module names (onnx2torch builds an anonymous graph module instead).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from reid.errors import ReidTraceError
from reid.models.factory import create_model
from reid.models.net import ReIDNet
from reid.models.registry import list_models

__all__ = [
    "FOLDABLE",
    "SOURCE_WORDS",
    "import_onnx",
    "is_onnx_weights",
    "onnx_state_dict",
    "recalibrate_batchnorm",
    "resolve_onnx_path",
]

FOLDABLE = frozenset({"mobilenetv2_x1_0", "mobilenetv2_x1_0_128x64"})
"""Architectures whose exported graphs this module maps back (every conv has its own BN)."""

MIN_COSINE = 0.9999
DEFAULT_WORD = "default"
SOURCE_WORDS = frozenset({DEFAULT_WORD, "source"})
"""Words meaning the bundled FP32 source model. ``default`` keeps its old meaning here (the
shipped weights, trainable) although the default *embedder* is now that model's INT8 file."""


def resolve_onnx_path(path: str | Path) -> Path:
    """``"default"`` or ``"source"`` -> the bundled FP32 source model; anything else as a path."""
    if str(path) in SOURCE_WORDS:
        from reid.embed import source_model  # onnxruntime side of reid: no torch

        return source_model()
    return Path(path)


def is_onnx_weights(path: str | Path) -> bool:
    """True for ``default``/``source`` and for ``.onnx`` files (what :func:`import_onnx` takes)."""
    return str(path) in SOURCE_WORDS or Path(path).suffix.lower() == ".onnx"


def _read(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ReidTraceError(
            f"model file {str(path)!r} does not exist",
            hint="pass `default` (the bundled FP32 model) or an .onnx file from `reidtrace export`",
        )
    try:
        return onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError, OSError, ... for foreign files
        raise ReidTraceError(
            f"{str(path)!r} is not a readable ONNX model ({type(err).__name__})",
            hint="pass an .onnx file written by `reidtrace export`",
        ) from err


def _arch(proto: onnx.ModelProto, path: Path) -> str:
    meta = {p.key: p.value for p in proto.metadata_props}
    arch = meta.get("arch")
    if arch is None:
        raise ReidTraceError(
            f"{str(path)!r} has no 'arch' metadata: it was not written by `reidtrace export`",
            hint="only reidtrace's own exports can be turned back into PyTorch models",
        )
    if arch not in list_models() or arch not in FOLDABLE:
        raise ReidTraceError(
            f"{str(path)!r} holds a {arch!r} model, which cannot be imported back into PyTorch",
            hint=f"importable architectures: {', '.join(sorted(FOLDABLE))}; for others start "
            "from their training checkpoint (.pt)",
        )
    return arch


def _conv_bn_pairs(model: ReIDNet) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d]]:
    """The backbone's convs in definition order, each with the BatchNorm right after it."""
    pairs: list[tuple[str, nn.Conv2d, nn.BatchNorm2d]] = []
    pending: tuple[str, nn.Conv2d] | None = None
    for name, module in model.backbone.named_modules():
        if isinstance(module, nn.Conv2d):
            if pending is not None:
                raise ReidTraceError(f"conv {pending[0]!r} has no BatchNorm: cannot unfold it")
            pending = (name, module)
        elif isinstance(module, nn.BatchNorm2d) and pending is not None:
            pairs.append((pending[0], pending[1], module))
            pending = None
    if pending is not None:
        raise ReidTraceError(f"conv {pending[0]!r} has no BatchNorm: cannot unfold it")
    return pairs


def _stored_tensors(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers, ``Constant`` values and ``Identity`` aliases of them, by name.

    The exporter's constant folding stores equal tensors once and names the copies through
    Identity nodes (an untrained network's zero biases, for instance).
    """
    out = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:  # topological order: an alias follows what it names
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(attr.t)
        elif node.op_type == "Identity" and node.input[0] in out:
            out[node.output[0]] = out[node.input[0]]
    return out


def onnx_state_dict(path: str | Path) -> tuple[str, dict[str, Tensor]]:
    """``(arch, state)``: the file's weights under our ReIDNet names (BN = identity + bias).

    The state holds every backbone tensor and the BNNeck; no classifier (it is sized by a
    training set). Conv nodes are matched to the network's convs in order, shapes checked.
    """
    path = resolve_onnx_path(path)
    return _state_from_proto(_read(path), path)


def _refuse_quantized(proto: onnx.ModelProto, path: Path) -> None:
    """A quantized file (INT8 weights behind DequantizeLinear, such as the bundled default
    embedder) has lost the FP32 weights: say so, instead of failing on a missing conv weight."""
    meta = {p.key: p.value for p in proto.metadata_props}
    quant_ops = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger"}
    if meta.get("precision", "fp32") != "fp32" or any(
        n.op_type in quant_ops for n in proto.graph.node
    ):
        raise ReidTraceError(
            f"{str(path)!r} is a quantized (INT8) model, which cannot be imported back into "
            "PyTorch",
            hint="start from the FP32 model it was made from: `source` (the bundled "
            "reid/weights/source_fp32.onnx) or your own FP32 export",
        )


def _state_from_proto(proto: onnx.ModelProto, path: Path) -> tuple[str, dict[str, Tensor]]:
    _refuse_quantized(proto, path)
    arch = _arch(proto, path)
    inits = _stored_tensors(proto)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    with torch.device("meta"):
        skeleton = create_model(arch)
    pairs = _conv_bn_pairs(skeleton)
    if len(convs) != len(pairs):
        raise ReidTraceError(
            f"{str(path)!r} has {len(convs)} conv layers, a {arch!r} network {len(pairs)}",
            hint="the file was changed after export (pruned or quantized?): start from its "
            "training checkpoint instead",
        )
    state: dict[str, Tensor] = {}
    for node, (name, conv, bn) in zip(convs, pairs, strict=True):
        try:
            weight = inits[node.input[1]]
            bias = (
                inits[node.input[2]]
                if len(node.input) > 2 and node.input[2]
                else np.zeros(weight.shape[0], np.float32)
            )
        except KeyError as err:  # a weight computed in the graph, not stored: not our export
            raise ReidTraceError(
                f"{str(path)!r}: conv {node.name!r} has no stored weight {err}",
                hint="only files written by `reidtrace export` can be imported",
            ) from err
        if tuple(weight.shape) != tuple(conv.weight.shape):
            raise ReidTraceError(
                f"{str(path)!r}: conv {node.name!r} has weight {tuple(weight.shape)}, the "
                f"{arch!r} layer {name!r} {tuple(conv.weight.shape)}",
                hint="the file does not hold the architecture its metadata names",
            )
        prefix = f"backbone.{name}"
        bn_name = next(n for n, m in skeleton.backbone.named_modules() if m is bn)
        bn_prefix = f"backbone.{bn_name}"
        channels = weight.shape[0]
        state[f"{prefix}.weight"] = torch.from_numpy(weight.copy())
        state[f"{bn_prefix}.weight"] = torch.ones(channels)
        state[f"{bn_prefix}.bias"] = torch.from_numpy(bias.astype(np.float32).copy())
        state[f"{bn_prefix}.running_mean"] = torch.zeros(channels)
        state[f"{bn_prefix}.running_var"] = torch.full((channels,), 1.0 - bn.eps)
        state[f"{bn_prefix}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    for key in ("weight", "bias", "running_mean", "running_var"):
        # "model." when the export wrapped the network in flip averaging
        name = next((n for n in (f"model.bnneck.{key}", f"bnneck.{key}") if n in inits), None)
        if name is None:
            raise ReidTraceError(
                f"{str(path)!r} has no BNNeck tensor 'bnneck.{key}'",
                hint="only files written by `reidtrace export` can be imported",
            )
        state[f"bnneck.{key}"] = torch.from_numpy(inits[name].copy())
    return arch, state


def import_onnx(path: str | Path, *, verify: bool = True) -> tuple[ReIDNet, dict]:
    """Rebuild our ONNX export as a ``ReIDNet`` in eval mode; returns ``(model, meta)``.

    ``meta`` mirrors :func:`reid.models.load_checkpoint`'s (arch, num_classes, epoch, info) plus
    ``source="onnx"`` and the file's metadata. ``verify`` runs ONNX Runtime and the rebuilt
    network (with flip averaging when the file has it) on one random batch: every row must
    agree to cosine >= 0.9999, else nothing is returned.
    """
    path = resolve_onnx_path(path)
    proto = _read(path)  # read once: weights and metadata
    arch, state = _state_from_proto(proto, path)
    model = create_model(arch)
    model.load_state_dict(state, strict=False)
    model.eval()
    proto_meta = {p.key: p.value for p in proto.metadata_props}
    if verify:
        _verify(model, path, flip=proto_meta.get("flip_average", "").lower() in ("1", "true"))
    epoch = proto_meta.get("epoch")
    meta = {
        "arch": arch,
        "num_classes": 1,
        "epoch": int(epoch) if epoch and epoch.isdigit() else None,
        "info": model.info.to_dict(),
        "source": "onnx",
        "onnx": str(path),
        "onnx_metadata": proto_meta,
        "extra": {},
    }
    return model, meta


def _verify(model: ReIDNet, path: Path, *, flip: bool) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    # the file's own input size: an export may run the network at another size than registered
    _, _, height, width = session.get_inputs()[0].shape
    if not (isinstance(height, int) and isinstance(width, int)):
        height, width = model.info.input_size
    x = torch.randn(3, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model(torch.cat([x, x.flip(3)])) if flip else model(x)
        if flip:
            want = torch.nn.functional.normalize(want[:3] + want[3:], dim=1)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    want_np = want.numpy()
    cos = np.sum(got * want_np, axis=1) / np.maximum(
        np.linalg.norm(got, axis=1) * np.linalg.norm(want_np, axis=1), 1e-12
    )
    worst = float(cos.min()) if got.shape == want_np.shape else float("nan")
    if not worst >= MIN_COSINE:
        raise ReidTraceError(
            f"the network rebuilt from {str(path)!r} disagrees with the file (lowest cosine "
            f"{worst:.6f} < {MIN_COSINE})",
            hint="the file's graph is not a plain reidtrace export; start from its checkpoint",
        )
    return worst


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Tensor]) -> int:
    """Re-estimate every BatchNorm2d's statistics on ``batches``; the eval function is kept.

    After :func:`import_onnx` the BatchNorms hold made-up statistics (mean 0, variance 1), so a
    training step, which normalises with the batch's own, would change what the network
    computes. Here each BN's input mean ``mu`` and variance ``var`` are measured (eval mode, one
    pass over ``batches``), and weight and bias are rescaled so that eval-mode output stays
    exactly the same: ``w' = w * s'/s`` and ``b' = b + w * (mu - m) / s`` with
    ``s = sqrt(v + eps)``, ``s' = sqrt(var + eps)``. Returns the number of layers recalibrated.
    Layers that must never use batch statistics (``FixedStatsBatchNorm2d``) are left alone.
    """
    from reid.models.mobilenetv2 import FixedStatsBatchNorm2d

    layers = [
        m
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d) and not isinstance(m, FixedStatsBatchNorm2d)
    ]
    sums = {id(m): [0.0, 0.0, 0] for m in layers}

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], _out: Tensor) -> None:
        x = inputs[0].detach().double()
        acc = sums[id(module)]
        acc[0] = acc[0] + x.sum(dim=(0, 2, 3))
        acc[1] = acc[1] + (x * x).sum(dim=(0, 2, 3))
        acc[2] += x.shape[0] * x.shape[2] * x.shape[3]

    was_training = model.training
    model.eval()
    handles = [m.register_forward_hook(hook) for m in layers]
    seen = 0
    try:
        for batch in batches:
            model(batch)
            seen += 1
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if seen == 0:
        raise ReidTraceError(
            "no images to recalibrate BatchNorm on", hint="pass at least one batch of crops"
        )
    for m in layers:
        total, squares, count = sums[id(m)]
        mu = (total / count).to(m.running_mean.dtype)
        var = (squares / count - (total / count) ** 2).clamp_min(0).to(m.running_var.dtype)
        s_old = torch.sqrt(m.running_var + m.eps)
        s_new = torch.sqrt(var + m.eps)
        w = m.weight.detach().clone()
        m.bias.data += w * (mu - m.running_mean) / s_old
        m.weight.data = w * s_new / s_old
        m.running_mean.copy_(mu)
        m.running_var.copy_(var)
    return len(layers)
