"""Tracks and their detections (reads), and track embeddings (the mean of their sightings)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from indexer.store.models import Detection, Sighting, Track
from indexer.store.repo.batches import in_batches
from indexer.store.repo.sightings import decode_vector, encode_vector
from reid.detections import Detections
from reid.vectors import l2_normalize

__all__ = [
    "detections_for_track",
    "detections_for_video",
    "track_count",
    "track_embedding",
    "track_embedding_update",
    "tracks_for_camera",
    "tracks_for_video",
]


def track_embedding(track: Track) -> np.ndarray | None:
    """The track's stored embedding as a float32 vector (``None`` before it has sightings)."""
    return None if track.embedding is None else decode_vector(track.embedding)


def track_embedding_update(
    *,
    session: Session,
    track_ids: Iterable[int],
    model: str | None = None,
    commit: bool = True,
) -> int:
    """Set each track's embedding to the L2-normalised mean of its sightings' vectors.

    Recomputed from the stored sightings (so it is idempotent); with ``model`` only that
    embedder's sightings count, otherwise those of the track's latest embedder. A track with no
    sightings gets ``None``. Returns the number of tracks updated.
    """
    ids = sorted(set(track_ids))
    if not ids:
        return 0
    rows: dict[int, list[tuple[int, str, bytes]]] = defaultdict(list)
    for part in in_batches(ids):
        stmt = select(Sighting.track_id, Sighting.id, Sighting.model, Sighting.vector).where(
            Sighting.track_id.in_(part)
        )
        if model is not None:
            stmt = stmt.where(Sighting.model == model)
        for tid, sid, m, vec in session.execute(stmt):
            rows[int(tid)].append((int(sid), m, vec))
    params = []
    for tid in ids:
        got = sorted(rows.get(tid, []))
        emb: bytes | None = None
        if got:
            latest = got[-1][1]
            vecs = np.stack([decode_vector(v) for _, m, v in got if m == latest])
            mean = vecs.mean(axis=0)
            # eps = the smallest float: every non-zero norm divides, as track embeddings always
            # were, and a zero mean stays zero (the default eps would floor norms below 1e-12)
            tiny = np.finfo(mean.dtype).smallest_subnormal
            emb = encode_vector(l2_normalize(mean, eps=tiny))
        params.append({"id": tid, "embedding": emb})
    session.execute(update(Track), params)
    if commit:
        session.commit()
    return len(params)


def detections_for_video(*, session: Session, video_id: int) -> Detections:
    """Every tracked box of a video as ``Detections`` (``track_id`` = the stored Track id)."""
    stmt = (
        select(
            Detection.frame_idx,
            Detection.track_id,
            Detection.x1,
            Detection.y1,
            Detection.x2,
            Detection.y2,
            Detection.confidence,
        )
        .where(Detection.video_id == video_id)
        .order_by(Detection.frame_idx, Detection.track_id)
    )
    rows = np.array(session.execute(stmt).all(), dtype=np.float64).reshape(-1, 7)
    return Detections(
        xyxy=rows[:, 2:6],
        confidence=rows[:, 6],
        frame_idx=rows[:, 0].astype(np.int64),
        track_id=rows[:, 1].astype(np.int64),
    )


def tracks_for_camera(
    *,
    session: Session,
    camera_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[Track]:
    """The camera's tracks in time order; ``start``/``end`` keep those overlapping [start, end]."""
    stmt = select(Track).where(Track.camera_id == camera_id)
    if start is not None:
        stmt = stmt.where(Track.end_time >= start)
    if end is not None:
        stmt = stmt.where(Track.start_time <= end)
    stmt = stmt.order_by(Track.start_time, Track.id).limit(limit)
    return list(session.scalars(stmt))


def tracks_for_video(*, session: Session, video_id: int) -> list[Track]:
    stmt = select(Track).where(Track.video_id == video_id).order_by(Track.track_no)
    return list(session.scalars(stmt))


def track_count(*, session: Session, video_id: int) -> int:
    """How many tracks the video has stored (what an ingest report counts), without loading them."""
    stmt = select(func.count()).select_from(Track).where(Track.video_id == video_id)
    return int(session.scalar(stmt) or 0)


def detections_for_track(*, session: Session, track_id: int) -> list[Detection]:
    """The track's boxes in frame order (trajectories, contacts, MOT export)."""
    stmt = select(Detection).where(Detection.track_id == track_id).order_by(Detection.frame_idx)
    return list(session.scalars(stmt))
