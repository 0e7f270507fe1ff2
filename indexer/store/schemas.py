"""Pydantic shapes named by role (after the FastAPI template): ``*Public`` go out, ``*Create`` in.

``*Public`` shapes are read from ORM rows (``Model.model_validate(row)``) and never carry the
heavy columns (vectors, JPEG bytes): those are served by their own endpoints. Results of the
write functions in :mod:`indexer.store.repo` are shapes too, so callers need no ORM session to
read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from indexer.store.models import VIDEO_KINDS
from reid.errors import ReidTraceError

__all__ = [
    "CameraPublic",
    "ChunkResult",
    "DeletedRows",
    "DetectionPublic",
    "JobPublic",
    "OpenedVideo",
    "ResumeState",
    "SightingCreate",
    "SightingPublic",
    "TrackPublic",
    "VideoPublic",
    "VideoSpec",
]


class _FromRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CameraPublic(_FromRow):
    id: int
    name: str
    width: int
    height: int
    fps: float
    homography: list[list[float]] | None
    ground_units: str | None


class VideoPublic(_FromRow):
    id: int
    camera_id: int
    path: str
    content_hash: str
    start_time: AwareDatetime
    fps: float
    num_frames: int
    width: int
    height: int
    status: str
    error: str | None
    frames_done: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class TrackPublic(_FromRow):
    id: int
    video_id: int
    camera_id: int
    track_no: int
    start_frame: int
    end_frame: int
    start_time: AwareDatetime
    end_time: AwareDatetime
    num_detections: int
    has_embedding: bool


class DetectionPublic(_FromRow):
    id: int
    track_id: int
    video_id: int
    frame_idx: int
    time: AwareDatetime
    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float
    foot_x: float | None
    foot_y: float | None


class SightingPublic(_FromRow):
    id: int
    track_id: int
    detection_id: int
    dim: int
    model: str
    quality: float
    has_thumbnail: bool


class JobPublic(_FromRow):
    id: int
    kind: str
    status: str
    params: dict[str, Any]
    progress: dict[str, Any]
    error: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class SightingCreate(BaseModel):
    """One embedded crop, named by the tracker's ``track_no`` and its ``frame_idx``.

    The detection it belongs to may have been committed in an earlier chunk (best-K crops are
    chosen when a track ends), so it is found by ``(video, track_no, frame_idx)``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    track_no: int
    frame_idx: int = Field(ge=0)
    vector: np.ndarray
    model: str = Field(min_length=1)
    quality: float = 0.0
    thumbnail: bytes | None = None

    @field_validator("vector", mode="before")
    @classmethod
    def _vector(cls, value: Any) -> np.ndarray:
        vec = np.ascontiguousarray(value, dtype=np.float32)
        if vec.ndim != 1 or vec.size == 0 or not np.isfinite(vec).all():
            raise ValueError(f"vector must be a finite 1-D float array, got shape {vec.shape}")
        return vec


class ChunkResult(BaseModel):
    """What one ``commit_chunk`` wrote (re-running a chunk reports zeros, not duplicates)."""

    video_id: int
    frames_done: int
    tracks_created: int
    detections_inserted: int
    detections_ignored: int  # already stored (a re-run chunk)
    sighting_ids: list[int]  # newly inserted: add these to the vector index
    sightings_ignored: int


class DeletedRows(BaseModel):
    """What ``delete_video_rows_after`` / ``delete_video`` removed."""

    detections: int
    tracks: int
    sighting_ids: list[int]  # remove these from the vector index (sync_index also heals)


class ResumeState(BaseModel):
    """Where to pick an interrupted video up again.

    ``frames_done``: every row of frames before it is committed. ``next_track_no``: a fresh
    tracker's numbers must start here so they do not merge with stored tracks.
    ``unfinished_from``: the first frame of the earliest track that has no sightings yet (its
    best crops were still in memory when the process stopped); rewinding there with
    ``delete_video_rows_after`` re-embeds those tracks. Conservative: a finished track whose
    crops all scored zero also counts. ``None`` when every track has sightings.
    """

    video_id: int
    status: str
    frames_done: int
    next_track_no: int
    unfinished_from: int | None


@dataclass(frozen=True, kw_only=True)
class VideoSpec:
    """What ingestion knows about one video before it opens it in a ``Store``.

    The camera fields (``camera`` to ``ground_units``) create the camera the first time its name
    is seen; an existing camera keeps its stored values. The video is found again by ``camera``
    and ``content_hash`` (the same bytes are one video, wherever the file lies), so the other
    video fields only count when it is created. ``ground_units`` is ``"m"`` when
    ``homography`` maps image pixels to metres on the ground, ``None`` without one.
    """

    camera: str
    width: int
    height: int
    fps: float
    homography: list[list[float]] | np.ndarray | None = None
    ground_units: str | None = None
    path: str
    content_hash: str
    start_time: datetime
    num_frames: int
    kind: str = "video"

    def __post_init__(self) -> None:
        # The store checks sizes, rates, time zones and the homography itself (where it
        # reads them); these two it would otherwise take as a bug or store silently.
        if self.kind not in VIDEO_KINDS:
            raise ReidTraceError(
                f"video {self.path}: kind {self.kind!r} is not one of {VIDEO_KINDS}",
                hint='use "video" for a video file, "frames" for a folder of frames',
            )
        if not self.content_hash:
            raise ReidTraceError(
                f"video {self.path}: empty content hash",
                hint="hash the file's bytes (the store finds a video again by its hash)",
            )


@dataclass(frozen=True)
class OpenedVideo:
    """A video as ``Store.open_video`` found it: where ingestion resumes, or that it is done.

    ``status`` is the status *before* opening: ``"new"`` when the call created the video,
    otherwise the stored one (``"done"``: skip it; any other: an earlier run stopped, resume
    from ``frames_done`` with ``checkpoint``). ``frames_done``: every frame
    before it has its rows committed. ``checkpoint``: the opaque bytes saved with the last
    chunk, ``None`` when none was saved.
    """

    video_id: int
    camera_id: int
    status: str
    frames_done: int
    checkpoint: bytes | None
