"""The plug-in points of the storage stage: one small protocol each (STYLE.md §1).

Structural, like ``reid/protocols.py``: an implementation needs the methods, not our base
class, so a FAISS index, a brute-force numpy index for tests, or a remote vector service can
stand behind ``VectorIndex``; a SQL database or a fake behind ``Store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from indexer.store.schemas import ChunkResult, SightingCreate
from reid.detections import Detections

__all__ = ["Store", "VectorIndex"]


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest-neighbour search over vectors keyed by int64 ids (``Sighting.id``)."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` (n, d) float32 under ``ids`` (n,) int64 (ids not already present)."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each (n, k), best first; missing neighbours have id -1.

        Scores are the index metric: inner product (higher is closer) or squared L2 distance
        (lower is closer).
        """
        ...


@runtime_checkable
class Store(Protocol):
    """Where ingestion writes one video's results, chunk by chunk (``indexer.store.SqlStore``)."""

    def write(
        self,
        video_id: int,
        detections: Detections,
        *,
        frames_done: int,
        sightings: Sequence[SightingCreate] = (),
    ) -> ChunkResult:
        """Store tracked ``detections`` and embedded ``sightings``; every frame before
        ``frames_done`` is then complete. Writing the same chunk twice changes nothing."""
        ...
