"""The embedder: person crops in, unit-length ReID embeddings out, with ONNX Runtime.

Serving and ingestion run this module, so it needs only numpy, OpenCV and onnxruntime (never
torch). A model carries its own input contract in the ONNX metadata, written by
``reid.models.export`` (``reidtrace export``), so the caller never has to know how it was trained:

=============== =========================================== ==============================
key             meaning                                     example
=============== =========================================== ==============================
arch            registry name of the network                ``osnet_x0_25``
input_height    crop height fed to the network (pixels)     ``256``
input_width     crop width fed to the network (pixels)      ``128``
mean, std       per-channel normalisation (JSON, 0-1 scale) ``[0.485, 0.456, 0.406]``
embed_dim       embedding size                              ``512``
color           channel order of the input                  ``RGB``
layout          tensor layout                               ``NCHW``
version         reidtrace version that exported it          ``0.1.0``
=============== =========================================== ==============================

The network input is named ``images`` (float32, N x 3 x H x W, normalised) and the output
``embeddings`` (N x D, unit length); other names work too, as long as there is one 4-D input
with 3 channels and one 2-D output. A model without the metadata (exported elsewhere) is still
usable when its input has a fixed H x W: the ImageNet mean/std and RGB are assumed, as torchreid
trains with them.

Every model has an identity, :func:`model_identity` (``OnnxEmbedder.model_id``):
``"<arch>-<sha256[:12]>"``, the ``arch`` metadata (else the file's stem) and the start of the
file's SHA-256. The store and the vector index record it with every vector, because vectors of
two models are not comparable: the name keeps it readable, the hash makes two different files
two different models whatever they are called (the bundled FP32 source model
``source_fp32.onnx`` is ``mobilenetv2_x1_0-5e696aa0c364``; the default ``default.onnx``, its INT8
compression, has its own identity, so vectors stored with one are refused by the other).

Preprocessing (:func:`preprocess_crops`) is the same as the PyTorch evaluation path's
(``reid.models.extract_features``; ``tests/reid/models/test_export.py`` checks that they agree),
so an ONNX model and the checkpoint it came from see the same pixels: BGR crop -> resize to
(W, H) with bilinear interpolation -> RGB -> /255 -> (x - mean) / std -> NCHW float32.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

import reid
from reid.detections import Detections
from reid.embed.model_file import (
    InputContract,
    identity,
    model_identity,
    open_session,
    require_file,
    shape_str,
)
from reid.errors import ReidTraceError
from reid.vectors import l2_normalize

__all__ = [
    "DEFAULT_MODEL",
    "SOURCE_MODEL",
    "InputContract",
    "OnnxEmbedder",
    "create_embedder",
    "default_model",
    "model_identity",
    "preprocess_crops",
    "read_image",
    "source_model",
]

DEFAULT_MODEL = Path(reid.__file__).parent / "weights" / "default.onnx"
"""The bundled embedder, used when no model is named: the INT8 compression of
:data:`SOURCE_MODEL` (one pass a crop), which ONNX Runtime runs but PyTorch cannot rebuild."""

SOURCE_MODEL = Path(reid.__file__).parent / "weights" / "source_fp32.onnx"
"""The bundled FP32 model the default was compressed from (flip averaging in the graph): the
trainable copy of the shipped weights, for training, adaptation and compression."""

VALID_FLAG = "embedding_valid"
"""``Detections.extra`` column set by :meth:`OnnxEmbedder.embed`: False where the box had no
pixel inside the frame (its embedding is all zeros, so it matches nothing)."""

Progress = Callable[[str, int, int], None]


# --- preprocessing (shared with the PyTorch extractor) -------------------------------------------
def _as_bgr(img: Any, what: str) -> np.ndarray:
    """A 3-channel uint8 image; grey and BGRA images are converted, anything else refused."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        dtype = getattr(img, "dtype", type(img).__name__)
        raise ReidTraceError(
            f"{what} must be a uint8 numpy image (as cv2.imread returns), got {dtype}",
            hint="pass BGR uint8 arrays of shape (height, width, 3)",
        )
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ReidTraceError(
            f"{what} has shape {img.shape}; expected (height, width, 3) with height, width > 0",
            hint="pass BGR uint8 arrays of shape (height, width, 3)",
        )
    return img


def preprocess_crops(crops: Sequence[np.ndarray], contract: InputContract) -> np.ndarray:
    """BGR uint8 crops -> the network input, float32 (n, 3, H, W), normalised per the contract.

    Resizing happens on uint8 before the colour conversion (cheaper: the crop is usually
    larger than the network input). ``x / 255 - mean) / std`` is folded into one multiply-add.
    """
    h, w = contract.height, contract.width
    batch = np.empty((len(crops), h, w, 3), np.uint8)
    for i, crop in enumerate(crops):
        img = _as_bgr(crop, f"crop {i}")
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        batch[i] = img
    if contract.color == "RGB":
        batch = batch[..., ::-1]
    scale = (1.0 / (255.0 * np.asarray(contract.std, np.float32))).astype(np.float32)
    shift = (np.asarray(contract.mean, np.float32) / np.asarray(contract.std, np.float32)).astype(
        np.float32
    )
    x = batch.astype(np.float32) * scale - shift
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def read_image(path: str | Path) -> np.ndarray:
    """A BGR uint8 image from disk; an unreadable file is a user error naming the path."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        reason = "does not exist" if not Path(path).exists() else "is not a readable image"
        raise ReidTraceError(
            f"image {str(path)!r} {reason}",
            hint="the file may be missing, truncated or not an image; remove it or replace it",
        )
    return img


def _embed_files(
    paths: Sequence[str | Path],
    forward: Callable[[np.ndarray], np.ndarray],
    contract: InputContract,
    *,
    batch_size: int,
    flip: bool = False,
    progress: Progress | None = None,
    stage: str = "embedding",
) -> np.ndarray:
    """Read, preprocess and embed image files in batches; (n, D) float32 unit rows.

    ``forward`` maps a preprocessed (b, 3, H, W) batch to (b, D) features. With ``flip`` each
    image is also embedded mirrored left-right and the two are averaged (the usual test-time
    augmentation in ReID). The next batch is read on a second thread while the current one
    runs, because decoding JPEGs and running the model each take one core.
    """
    if batch_size < 1:
        raise ReidTraceError(f"batch size must be >= 1, got {batch_size}", hint="try 32 or 64")
    paths = list(paths)
    total = len(paths)
    if total == 0:
        return np.zeros((0, contract.embed_dim or 0), np.float32)

    def load(lo: int) -> np.ndarray:
        return preprocess_crops([read_image(p) for p in paths[lo : lo + batch_size]], contract)

    chunks: list[np.ndarray] = []
    starts = list(range(0, total, batch_size))
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, starts[0])
        for i, lo in enumerate(starts):
            x = pending.result()
            if i + 1 < len(starts):
                pending = pool.submit(load, starts[i + 1])
            feats = l2_normalize(forward(x), dtype=np.float32)
            if flip:
                mirror = forward(np.ascontiguousarray(x[..., ::-1]))
                feats = feats + l2_normalize(mirror, dtype=np.float32)
            chunks.append(l2_normalize(feats, dtype=np.float32))
            if progress:
                progress(stage, min(lo + batch_size, total), total)
    return np.concatenate(chunks)


# --- the ONNX Runtime embedder -------------------------------------------------------------------
class OnnxEmbedder:
    """An ``Embedder`` backed by an ONNX model and ONNX Runtime (CPU by default).

    ``threads`` sets ONNX Runtime's intra-op threads (default: one per CPU core); inter-op
    parallelism is off and execution sequential, since a ReID CNN is a chain of layers and extra
    thread pools only compete for the same cores. ``batch_size`` bounds how many crops go
    through the network at once (memory); a model exported with a fixed batch size is fed
    exactly that. ``providers`` defaults to the CPU.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int | None = None,
        batch_size: int = 32,
        providers: Sequence[str] | None = None,
    ) -> None:
        self.path = Path(path)
        if threads is not None and threads < 1:
            raise ReidTraceError(f"threads must be >= 1, got {threads}", hint="or leave it unset")
        if batch_size < 1:
            raise ReidTraceError(f"batch size must be >= 1, got {batch_size}", hint="try 32")
        require_file(self.path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle pool threads sleep instead of spinning: ingestion shares the cores with decoding and
        # detection, and spinning threads steal them (2 threads on a busy 2-core machine: 187
        # img/s spinning vs 291 not, osnet_x0_25 at 256x128)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = open_session(self.path, opts, providers)
        source = f"ONNX model {self.path.name!r}"
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if (
            len(inputs) != 1
            or inputs[0].type != "tensor(float)"
            or len(shape) != 4
            or shape[1] != 3
        ):
            got = ", ".join(f"{i.name}: {i.type} {shape_str(i.shape)}" for i in inputs)
            raise ReidTraceError(
                f"{source} takes [{got}], but an embedder expects N x 3 x H x W float32 images",
                hint="export a ReID network whose one input is a batch of RGB images",
            )
        if len(outputs) != 1 or len(outputs[0].shape) != 2:
            got = ", ".join(f"{o.name}: {shape_str(o.shape)}" for o in outputs)
            raise ReidTraceError(
                f"{source} returns [{got}], but an embedder expects one N x D output",
                hint="export the network in eval mode, returning only the embeddings",
            )
        self._input = inputs[0].name
        self._output = outputs[0].name
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        contract = InputContract.from_metadata(meta, shape, source)
        fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self._fixed_batch = fixed_batch
        self.batch_size = fixed_batch or batch_size
        out_dim = outputs[0].shape[1]
        dim = contract.embed_dim or (out_dim if isinstance(out_dim, int) else None)
        if dim is None:  # neither metadata nor a fixed output size: ask the model
            probe = np.zeros((fixed_batch or 1, 3, contract.height, contract.width), np.float32)
            dim = int(self._run(probe).shape[1])
        if isinstance(out_dim, int) and out_dim != dim:
            raise ReidTraceError(
                f"{source}: metadata embed_dim={dim} disagrees with its output size {out_dim}",
                hint="re-export the model with `reidtrace export`",
            )
        self.contract = replace(contract, embed_dim=dim)
        self.dim: int = dim
        # taken now, so the id names the bytes this session was loaded from even if the file is
        # replaced later (a cached lookup: the file is hashed once per path and modification)
        self._model_id = identity(self.path, contract.arch)

    @property
    def model_id(self) -> str:
        """The model's identity, ``"<arch>-<sha256[:12]>"``: see :func:`model_identity`."""
        return self._model_id

    def __repr__(self) -> str:
        c = self.contract
        return (
            f"OnnxEmbedder({str(self.path)!r}, id={self.model_id}, input={c.height}x{c.width}, "
            f"dim={self.dim})"
        )

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Raw network output for a preprocessed batch, honouring a fixed batch size."""
        if self._fixed_batch is None:
            return self._session.run([self._output], {self._input: x})[0]
        outs = []
        b = self._fixed_batch
        for lo in range(0, len(x), b):
            part = x[lo : lo + b]
            pad = b - len(part)
            if pad:
                part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
            outs.append(self._session.run([self._output], {self._input: part})[0][: b - pad])
        return np.concatenate(outs)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed (n, 3, H, W) float32 -> (n, D) unit rows, ``batch_size`` at a time."""
        if len(x) == 0:
            return np.zeros((0, self.dim), np.float32)
        outs = [self._run(x[lo : lo + self.batch_size]) for lo in range(0, len(x), self.batch_size)]
        out = np.concatenate(outs)
        if out.shape != (len(x), self.dim):
            raise ValueError(f"model returned {out.shape}, expected {(len(x), self.dim)}")
        return l2_normalize(out, dtype=np.float32)

    def embed_crops(self, crops: Sequence[np.ndarray], *, flip: bool = False) -> np.ndarray:
        """BGR uint8 crops (any sizes) -> (n, D) float32 unit-length embeddings."""
        out = np.zeros((len(crops), self.dim), np.float32)
        for lo in range(0, len(crops), self.batch_size):
            x = preprocess_crops(crops[lo : lo + self.batch_size], self.contract)
            feats = self.forward(x)
            if flip:
                mirror = self.forward(np.ascontiguousarray(x[..., ::-1]))
                feats = l2_normalize(feats + mirror, dtype=np.float32)
            out[lo : lo + len(x)] = feats
        return out

    def embed(self, frame: np.ndarray, detections: Detections) -> Detections:
        """A copy of ``detections`` with ``embedding`` filled from the boxes' pixels in ``frame``.

        Boxes are clipped to the frame and rounded outward to whole pixels. A box with no pixel
        inside the frame (outside it, inverted, zero-sized or NaN) gets an all-zero embedding and
        ``extra["embedding_valid"] = False``: zeros match nothing under cosine similarity and
        drop out of a track's mean embedding, while the row count stays aligned.
        """
        frame = _as_bgr(frame, "frame")
        n = len(detections)
        emb = np.zeros((n, self.dim), np.float32)
        valid = np.zeros(n, bool)
        if n:
            h, w = frame.shape[:2]
            box = detections.xyxy.astype(np.float64)
            finite = np.isfinite(box).all(axis=1)
            box = np.where(finite[:, None], box, 0.0)
            x1 = np.floor(np.clip(box[:, 0], 0, w)).astype(np.int64)
            y1 = np.floor(np.clip(box[:, 1], 0, h)).astype(np.int64)
            x2 = np.ceil(np.clip(box[:, 2], 0, w)).astype(np.int64)
            y2 = np.ceil(np.clip(box[:, 3], 0, h)).astype(np.int64)
            valid = finite & (x2 > x1) & (y2 > y1)
            idx = np.flatnonzero(valid)
            crops = [frame[y1[i] : y2[i], x1[i] : x2[i]] for i in idx]
            if crops:
                emb[idx] = self.embed_crops(crops)
        return replace(detections, embedding=emb, extra={**detections.extra, VALID_FLAG: valid})

    def embed_paths(
        self,
        paths: Iterable[str | Path],
        *,
        flip: bool = False,
        progress: Progress | None = None,
        stage: str = "embedding",
    ) -> np.ndarray:
        """Embed image files (read with ``cv2.imread``) in batches; (n, D) float32 unit rows.

        ``progress(stage, done, total)`` is called after each batch.
        """
        return _embed_files(
            list(paths),
            self.forward,
            self.contract,
            batch_size=self.batch_size,
            flip=flip,
            progress=progress,
            stage=stage,
        )


_EMBEDDERS: dict[str, Callable[..., OnnxEmbedder]] = {"onnx": OnnxEmbedder}


def create_embedder(name: str = "onnx", **kwargs: Any) -> OnnxEmbedder:
    """An embedder by name (``"onnx"``: :class:`OnnxEmbedder`, keyword arguments passed on).

    ``path`` defaults to the bundled model :data:`DEFAULT_MODEL`.
    """
    if name not in _EMBEDDERS:
        raise ReidTraceError(
            f"unknown embedder {name!r}", hint=f"choose one of {sorted(_EMBEDDERS)}"
        )
    if "path" not in kwargs:
        kwargs["path"] = default_model()
    return _EMBEDDERS[name](**kwargs)


def default_model() -> Path:
    """The bundled model, or a user error when this build ships none."""
    if not DEFAULT_MODEL.is_file():
        raise ReidTraceError(
            f"no default model shipped yet (looked for {DEFAULT_MODEL})",
            hint="pass --model PATH (an .onnx file or a .pt/.pth checkpoint)",
        )
    return DEFAULT_MODEL


def source_model() -> Path:
    """The bundled FP32 source model, or a user error when this build ships none.

    Whatever needs trainable weights or the uncompressed model (``load_checkpoint("default")``,
    adaptation, compression, benchmarks of the source) starts here, because the INT8 default
    cannot be turned back into PyTorch.
    """
    if not SOURCE_MODEL.is_file():
        raise ReidTraceError(
            f"no FP32 source model shipped (looked for {SOURCE_MODEL})",
            hint="pass --model PATH (an FP32 .onnx file from `reidtrace export`)",
        )
    return SOURCE_MODEL
