"""Pydantic shapes named by role (after the FastAPI template): ``*Public`` go out, ``*Create`` in.

``*Public`` shapes are read from ORM rows (``Model.model_validate(row)``) and never carry the
heavy columns (vectors, JPEG bytes): those are served by their own endpoints. Results of the
write functions in :mod:`indexer.store.repo` are shapes too, so callers need no ORM session to
read them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "CameraPublic",
    "ChunkResult",
    "DeletedRows",
    "DetectionPublic",
    "JobPublic",
    "ResumeState",
    "SightingCreate",
    "SightingPublic",
    "TrackPublic",
    "VideoPublic",
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
