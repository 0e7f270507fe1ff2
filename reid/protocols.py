"""The plug-in points of the pixel stages: one small protocol per stage (STYLE.md §1).

Stages talk only through :class:`~reid.detections.Detections`, so a detector, tracker or
embedder can be swapped (a real network, background subtraction, ground truth for scoring the
later stages in isolation) without the caller knowing which one it holds. The protocols are
structural: implementations do not inherit from them, they only need the methods, which keeps
third-party wrappers free of any import of ours. ``VectorIndex`` and ``Store`` live in
``indexer/protocols.py`` because ``reid`` never imports downstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from reid.detections import Detections

__all__ = ["Detector", "Embedder", "Tracker"]


@runtime_checkable
class Detector(Protocol):
    """Finds people in one frame.

    ``frame`` is an OpenCV BGR ``uint8`` image (H, W, 3); the result holds person boxes only, in
    that frame's pixel coordinates, clipped to it, every row with ``frame_idx``. Detectors that
    keep state between frames (background subtraction) expect frames in order. A detector whose
    ``detect`` may run on several frames at once from different threads says so with a class
    attribute ``thread_safe = True``; ingestion then detects frames ahead in a thread pool.
    """

    def detect(self, frame: np.ndarray, frame_idx: int) -> Detections: ...


@runtime_checkable
class Tracker(Protocol):
    """Joins one camera's detections over time into tracks."""

    def update(self, detections: Detections) -> Detections:
        """Return ``detections`` (one frame's) with ``track_id`` filled."""
        ...

    def reset(self) -> None:
        """Forget every track (a new video or a cut in the stream)."""
        ...

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything the tracker remembers, as named arrays of numbers or strings (saved
        without pickle with each ingestion chunk, so a killed run resumes exactly)."""
        ...

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from ``get_state``'s arrays."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns person boxes into appearance vectors for re-identification."""

    dim: int
    model_id: str
    """Which model made the vectors (name + short content hash); stored with every vector, so
    vectors of two models are never mixed in one index."""

    def embed(self, frame: np.ndarray, detections: Detections) -> Detections:
        """Return ``detections`` with ``embedding`` filled: (n, dim) float32, unit length."""
        ...

    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) float32 unit vectors of person crops (BGR uint8 images of any size)."""
        ...
