"""The plug-in points of the storage stage: one small protocol each (STYLE.md §1).

Structural, like ``reid/protocols.py``: an implementation needs the methods, not our base
class, so a FAISS index, a brute-force numpy index for tests, or a remote vector service can
stand behind ``VectorIndex``; a SQL database or a fake behind ``Store`` and ``ReportSource``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from indexer.store.schemas import (
    CameraPublic,
    ChunkResult,
    OpenedVideo,
    SightingCreate,
    VideoSpec,
)
from reid.detections import Detections

__all__ = ["ReportSource", "Store", "VectorIndex"]


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
    """Where ingestion keeps one video's results (``indexer.store.SqlStore``).

    The four calls of an ingestion, each its own unit of work, so a pipeline holds no session
    (and no lock) while it decodes and embeds: ``open_video``, then ``write_chunk`` per chunk
    (``restart_video`` first when the saved checkpoint cannot be used), then ``close_video``.
    A run killed anywhere is resumed by opening the video again.
    """

    def open_video(self, spec: VideoSpec) -> OpenedVideo:
        """Get or create the camera and the video (by camera and content hash); a video not
        yet ``"done"`` becomes ``"running"``, a done one is returned as is (skip it)."""
        ...

    def write_chunk(
        self,
        video_id: int,
        detections: Detections,
        *,
        frames_done: int,
        sightings: Sequence[SightingCreate] = (),
        checkpoint: bytes | None,
    ) -> ChunkResult:
        """Store tracked ``detections``, embedded ``sightings`` and the pipeline's
        ``checkpoint`` together; every frame before ``frames_done`` is then complete. Writing
        the same chunk twice changes nothing."""
        ...

    def restart_video(self, video_id: int) -> None:
        """Drop every row of the video and its checkpoint: ingestion starts again at frame 0."""
        ...

    def close_video(self, video_id: int, status: str, error: str | None = None) -> int:
        """Mark the video ``"done"`` or ``"failed"`` (with ``error``); the number of tracks
        stored for it."""
        ...


@runtime_checkable
class ReportSource(Protocol):
    """The pictures and camera facts a trace report shows beside the trace itself.

    A trace (``indexer.query``) holds ids, times and boxes; the HTML report also wants
    thumbnails, the evidence frames and the cameras' geometry. Behind this protocol they come
    from the SQL store and the footage (``indexer.query.report.SqlReportSource``) or, in tests,
    from a fake. Four small reads rather than one: each can fail on its own (a deleted video
    leaves the thumbnails readable), and the report says what is missing instead of failing.
    """

    def cameras(self) -> list[CameraPublic]:
        """Every camera: name, resolution, image-to-ground homography (or None)."""
        ...

    def thumbnail(self, sighting_id: int) -> bytes | None:
        """The sighting's JPEG thumbnail; None when there is none (or no such sighting)."""
        ...

    def track_thumbnail(self, track_ids: Sequence[int]) -> bytes | None:
        """The best (highest-quality) JPEG thumbnail among the tracks' sightings, or None."""
        ...

    def frames(self, video_id: int, frame_idxs: Sequence[int]) -> dict[int, np.ndarray]:
        """BGR frames of a video by index (absent: past its end); ``ReidTraceError`` when the
        video cannot be read at all (unknown id, file moved, crops without frames)."""
        ...
