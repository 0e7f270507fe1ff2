"""What an ONNX ReID model file says about itself: its input contract and its identity.

The contract (crop size, normalisation, channel order) is read from the model's metadata,
written by ``reid.models.export``; the identity, ``"<arch>-<sha256[:12]>"``, names the model in
the store and the vector index (see ``reid.embed.onnx`` for both). Kept apart from the embedder
so that code which only needs to name or describe a model (export, the index) does not build a
session.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from reid.errors import ReidTraceError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "InputContract", "model_identity", "open_session"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputContract:
    """What a model expects as input; stored as ONNX metadata so the file is self-describing."""

    height: int
    width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color: str = "RGB"  # channel order of the network input: "RGB" or "BGR"
    layout: str = "NCHW"
    embed_dim: int | None = None
    arch: str = ""

    def to_metadata(self, version: str) -> dict[str, str]:
        """The ``metadata_props`` entries written by the exporter (all strings, as ONNX wants)."""
        meta = {
            "arch": self.arch,
            "input_height": str(self.height),
            "input_width": str(self.width),
            "mean": json.dumps([float(v) for v in self.mean]),
            "std": json.dumps([float(v) for v in self.std]),
            "color": self.color,
            "layout": self.layout,
            "version": version,
        }
        if self.embed_dim is not None:
            meta["embed_dim"] = str(self.embed_dim)
        return meta

    @classmethod
    def from_metadata(
        cls, meta: dict[str, str], input_shape: Sequence[Any], source: str
    ) -> InputContract:
        """Read the contract back; fall back to the input's fixed H x W when metadata lacks it.

        ``input_shape`` is the ONNX input shape (ints for fixed axes, strings or None for
        dynamic ones); ``source`` names the model in error messages.
        """
        fixed_h, fixed_w = (d if isinstance(d, int) else None for d in input_shape[2:4])
        height = _meta_int(meta, "input_height", source) or fixed_h
        width = _meta_int(meta, "input_width", source) or fixed_w
        if height is None or width is None:
            raise ReidTraceError(
                f"{source} has no input size: no input_height/input_width metadata and a "
                f"dynamic input shape {shape_str(input_shape)}",
                hint="export the model with `reidtrace export`, which records its input contract",
            )
        for name, meta_v, fixed_v in (("height", height, fixed_h), ("width", width, fixed_w)):
            if fixed_v is not None and meta_v != fixed_v:
                raise ReidTraceError(
                    f"{source}: metadata input_{name}={meta_v} disagrees with the input shape "
                    f"{shape_str(input_shape)}",
                    hint="re-export the model with `reidtrace export`",
                )
        color = meta.get("color", "RGB").upper()
        layout = meta.get("layout", "NCHW").upper()
        if color not in ("RGB", "BGR"):
            raise ReidTraceError(
                f"{source}: unsupported color {meta['color']!r} in the metadata",
                hint="models must take RGB or BGR input; re-export with `reidtrace export`",
            )
        if layout != "NCHW":
            raise ReidTraceError(
                f"{source}: unsupported layout {meta['layout']!r} in the metadata",
                hint="models must take NCHW input; re-export with `reidtrace export`",
            )
        return cls(
            height=height,
            width=width,
            mean=_meta_triple(meta, "mean", IMAGENET_MEAN, source),
            std=_meta_triple(meta, "std", IMAGENET_STD, source),
            color=color,
            layout=layout,
            embed_dim=_meta_int(meta, "embed_dim", source),
            arch=meta.get("arch", ""),
        )


def _meta_int(meta: dict[str, str], key: str, source: str) -> int | None:
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ReidTraceError(
            f"{source}: metadata {key}={raw!r} is not a positive integer",
            hint="re-export the model with `reidtrace export`",
        )
    return value


def _meta_triple(
    meta: dict[str, str], key: str, default: tuple[float, float, float], source: str
) -> tuple[float, float, float]:
    raw = meta.get(key)
    if raw is None:
        return default
    try:
        vals = [float(v) for v in json.loads(raw)]
    except (ValueError, TypeError) as err:
        raise ReidTraceError(
            f"{source}: metadata {key}={raw!r} is not a JSON list of 3 numbers",
            hint="re-export the model with `reidtrace export`",
        ) from err
    if len(vals) != 3 or not all(np.isfinite(vals)) or (key == "std" and min(vals) <= 0):
        raise ReidTraceError(
            f"{source}: metadata {key}={raw!r} must be 3 finite numbers"
            + (" > 0" if key == "std" else ""),
            hint="re-export the model with `reidtrace export`",
        )
    return (vals[0], vals[1], vals[2])


def shape_str(shape: Sequence[Any]) -> str:
    return " x ".join(str(d) if isinstance(d, int) else (d or "?") for d in shape)


def require_file(path: Path) -> None:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ReidTraceError(
            f"ONNX model {str(path)!r} {what}",
            hint="pass the path of an .onnx file, e.g. one written by `reidtrace export`",
        )


def open_session(
    path: Path, opts: ort.SessionOptions, providers: Sequence[str] | None = None
) -> ort.InferenceSession:
    """An ONNX Runtime session; a file it cannot load is a user error naming the file."""
    opts.log_severity_level = 3  # errors only: warnings about unused initializers are noise
    try:
        return ort.InferenceSession(
            str(path), sess_options=opts, providers=list(providers or ["CPUExecutionProvider"])
        )
    except Exception as err:  # ONNX Runtime raises its own Exception subclasses
        if not type(err).__module__.startswith("onnxruntime"):
            raise
        raise ReidTraceError(
            f"{str(path)!r} is not a loadable ONNX model: {str(err).splitlines()[0]}",
            hint="pass an .onnx file written by `reidtrace export` (or torch.onnx.export)",
        ) from err


# --- model identity ------------------------------------------------------------------------------
_HASHES: dict[tuple[str, int, int, int, int], str] = {}
"""sha256 per (resolved path, inode, size, mtime, ctime): each file version is read once."""


def _file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _HASHES:
        with path.open("rb") as f:
            _HASHES[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _HASHES[key]


def identity(path: Path, arch: str | None) -> str:
    """``"<name>-<sha256[:12]>"``; ``arch`` None means: read it from the file's metadata."""
    sha = _file_sha256(path)
    if arch is None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads = 1
        meta = open_session(path, opts).get_modelmeta().custom_metadata_map
        arch = meta.get("arch", "")
    # the name is for people (it ends up in messages and manifests): keep it one short token
    name = re.sub(r"[^A-Za-z0-9_.+]+", "_", arch or path.stem).strip("_.")[:60] or "model"
    return f"{name}-{sha[:12]}"


def model_identity(path: str | Path) -> str:
    """The identity of the ONNX model in ``path``, without building an embedder.

    ``"<name>-<sha256[:12]>"``: ``name`` is the ``arch`` metadata (the file's stem when it has
    none) and the hash is of the file's bytes, so the same bytes always give the same id and two
    different files never share one (re-exporting, quantising or editing the metadata makes a
    new model). Equal to ``OnnxEmbedder(path).model_id``; hashed once per file version.
    """
    path = Path(path)
    require_file(path)
    return identity(path, None)
