"""Score a model on a Market-1501-format folder: the library half of ``reidtrace evaluate``.

Query and gallery images are embedded with the model, compared by cosine distance (optionally
re-ranked, ``reid.evaluate.rerank``) and scored with ``reid.evaluate.protocol.evaluate_rank``,
the protocol every number in the project comes from. The model is chosen by extension:

- ``.onnx``: the serving embedder (``reid.embed.OnnxEmbedder``, ONNX Runtime), so the score is
  that of the exact file that will be deployed;
- ``.pt`` / ``.pth``: a training checkpoint, embedded with PyTorch (``reid.models``), imported
  only then: this module itself stays torch-free at import, so the serving image can evaluate
  ONNX models without torch installed.

Both paths read and normalise images the same way, so a checkpoint and its export score alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reid.data.market import read_market
from reid.embed import DEFAULT_MODEL, OnnxEmbedder, default_model, source_model
from reid.errors import ReidTraceError
from reid.evaluate.protocol import cosine_distmat, evaluate_rank
from reid.evaluate.rerank import k_reciprocal_rerank

__all__ = ["DEFAULT_MODEL", "MODEL_SUFFIXES", "evaluate_model", "resolve_model"]

MODEL_SUFFIXES = {".onnx": "onnx", ".pt": "torch", ".pth": "torch"}
"""Model file extensions and the backend that embeds with them."""

Progress = Callable[[str, int, int], None]


def resolve_model(model_path: str | Path | None) -> Path:
    """The model file to use: the given one (checked) or the bundled default; the words
    ``default`` and ``source`` (no such file here) name the bundled INT8 default and its FP32
    source, as ``bench reid-domains --models`` takes them."""
    if model_path is None:
        return default_model()
    path = Path(model_path)
    word = str(model_path).strip().lower()
    if word in ("default", "source") and not path.exists():
        return default_model() if word == "default" else source_model()
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise ReidTraceError(
            f"cannot tell what kind of model {str(path)!r} is from its extension "
            f"{path.suffix or '(none)'!r}",
            hint=f"pass an {', '.join(MODEL_SUFFIXES)} file (an ONNX export or a checkpoint), "
            "or default / source for the bundled models",
        )
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ReidTraceError(
            f"model {str(path)!r} {what}",
            hint="pass an .onnx file (`reidtrace export`) or a .pt checkpoint (`reidtrace train`)",
        )
    return path


def evaluate_model(
    data_dir: str | Path,
    model_path: str | Path | None = None,
    *,
    rerank: bool = False,
    flip: bool = False,
    batch_size: int = 64,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Market-1501 scores of a model, as the CLI and the metrics table report them.

    Returns ``RankResult.as_percent()`` (``mAP``, ``rank1``, ``rank5``, ``rank10``, ``mINP`` in
    percent, ``num_query``, ``num_gallery``) plus ``model`` (the path used), ``rerank``,
    ``flip`` and ``seconds`` (wall time, embedding included). ``model_path=None`` uses the
    bundled model. ``threads`` caps ONNX Runtime's threads (default: one per core).
    """
    t0 = time.perf_counter()
    path = resolve_model(model_path)
    if batch_size < 1:
        raise ReidTraceError(f"batch size must be >= 1, got {batch_size}", hint="try 64")
    data = read_market(data_dir, require_train=False)
    q_paths = [im.path for im in data.query]
    g_paths = [im.path for im in data.gallery]
    if MODEL_SUFFIXES[path.suffix.lower()] == "onnx":
        qf, gf = _onnx_features(path, q_paths, g_paths, flip, batch_size, threads, progress)
    else:
        qf, gf = _torch_features(path, q_paths, g_paths, flip, batch_size, progress)
    dist = k_reciprocal_rerank(qf, gf, progress=progress) if rerank else cosine_distmat(qf, gf)
    q_pids, q_cams = data.arrays("query")
    g_pids, g_cams = data.arrays("gallery")
    result = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams).as_percent()
    return {
        **result,
        "model": str(path),
        "rerank": bool(rerank),
        "flip": bool(flip),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _onnx_features(
    path: Path,
    q_paths: list[Path],
    g_paths: list[Path],
    flip: bool,
    batch_size: int,
    threads: int | None,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray]:
    emb = OnnxEmbedder(path, threads=threads, batch_size=batch_size)
    qf = emb.embed_paths(q_paths, flip=flip, progress=progress, stage="embedding query")
    gf = emb.embed_paths(g_paths, flip=flip, progress=progress, stage="embedding gallery")
    return qf, gf


def _torch_features(
    path: Path,
    q_paths: list[Path],
    g_paths: list[Path],
    flip: bool,
    batch_size: int,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray]:
    try:
        from reid.models import extract_features, load_checkpoint
    except ModuleNotFoundError as err:  # the serving install has no torch
        if err.name not in ("torch", "torchvision", "torchreid"):
            raise
        raise ReidTraceError(
            f"evaluating the checkpoint {str(path)!r} needs PyTorch, which is not installed",
            hint="install the training extra (pip install 'reidtrace[train]') or evaluate the "
            "exported .onnx model instead",
        ) from err
    model, _ = load_checkpoint(path)
    qf = extract_features(
        model, q_paths, batch_size, flip=flip, progress=progress, stage="embedding query"
    )
    gf = extract_features(
        model, g_paths, batch_size, flip=flip, progress=progress, stage="embedding gallery"
    )
    return qf, gf
