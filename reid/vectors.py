"""L2 normalisation: the one way embeddings, histograms and track means become unit vectors.

Similarity everywhere is the inner product of unit vectors (ARCHITECTURE.md), so the embedder,
the tracker's appearance cue, evaluation, re-ranking and the stored track embeddings all
normalise here. The arithmetic is exactly what each of them did before it moved here, so
stored vectors and printed scores are bit-for-bit unchanged: a 1-D vector is measured with
NumPy's vector norm (a dot product), rows of a matrix with a sum along ``axis``; a norm below
``eps`` is replaced by ``eps``, which keeps zero vectors zero instead of making them NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = ["EPS", "as_rows", "l2_normalize"]

EPS = 1e-12
"""Default floor of the norm: far below any real embedding's norm, far above float32 noise."""


def l2_normalize(
    x: ArrayLike, axis: int = -1, *, eps: float = EPS, dtype: DTypeLike | None = None
) -> np.ndarray:
    """``x`` divided by its L2 norm along ``axis`` (each row of an ``(n, d)`` matrix, by default).

    ``dtype`` casts ``x`` first (``np.float32`` for model outputs); otherwise the arithmetic is
    done in ``x``'s own dtype. Vectors whose norm is below ``eps`` are divided by ``eps``, so an
    all-zero vector (an empty histogram, a box the embedder could not see) stays all zeros.
    """
    arr = np.asarray(x, dtype=dtype)
    if arr.ndim == 0:
        raise ValueError("l2_normalize needs a vector or a matrix, got a scalar")
    if eps < 0 or not np.isfinite(eps):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    norm = np.linalg.norm(arr, axis=None if arr.ndim == 1 else axis, keepdims=True)
    return arr / np.maximum(norm, eps)


def as_rows(vectors: ArrayLike, dim: int, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a C-contiguous ``(n, dim)`` float32 matrix (one vector becomes one row),
    the layout every vector index takes; any other shape is a ``ValueError`` naming ``what``."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what} must be (n, {dim}) float32, got shape {x.shape}")
    return x
