"""Tracks and their detections (reads), track embeddings (the mean of their sightings), and
cutting a track in two where the tracker switched people (:func:`split_track`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from indexer.store.models import Detection, Sighting, Track, Video
from indexer.store.repo.batches import in_batches
from indexer.store.repo.sightings import decode_vector, encode_vector
from reid.detections import Detections
from reid.vectors import l2_normalize

__all__ = [
    "detections_for_track",
    "detections_for_video",
    "sighting_series",
    "split_track",
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


def sighting_series(
    *, session: Session, track_ids: Iterable[int], done_only: bool = True
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per track, its sightings' frame numbers ``(n,)`` and vectors ``(n, dim)`` in frame order,
    the track's latest embedder only (as :func:`track_embedding_update` averages them).

    ``done_only`` leaves out tracks of videos still being ingested: their rows may still be
    rewound (:func:`~indexer.store.repo.chunks.delete_video_rows_after`). Tracks without
    sightings are left out."""
    rows: dict[int, list[tuple[int, int, str, bytes]]] = defaultdict(list)
    for part in in_batches(sorted(set(track_ids))):
        stmt = (
            select(
                Sighting.track_id, Sighting.id, Detection.frame_idx, Sighting.model, Sighting.vector
            )
            .join(Detection, Detection.id == Sighting.detection_id)
            .where(Sighting.track_id.in_(part))
        )
        if done_only:
            stmt = stmt.join(Video, Video.id == Detection.video_id).where(Video.status == "done")
        for tid, sid, frame, model, vec in session.execute(stmt):
            rows[int(tid)].append((int(sid), int(frame), model, vec))
    out = {}
    for tid, got in rows.items():
        latest = max(got)[2]
        kept = sorted((f, v) for _, f, m, v in got if m == latest)
        frames = np.array([f for f, _ in kept], np.int64)
        out[tid] = (frames, np.stack([decode_vector(v) for _, v in kept]))
    return out


def split_track(*, session: Session, track_id: int, at_frame: int, commit: bool = True) -> Track:
    """Cut a track of a finished video in two: its detections (and their sightings) from
    ``at_frame`` on move to a new track of the same video, numbered after the video's last
    track; both tracks' spans, counts and embeddings are recomputed. Returns the new track
    (no person yet; the old one keeps its person).

    Used where the tracker followed one person and then another (``indexer.query.switches``).
    The cut is permanent: re-ingest the video to get the tracker's rows back."""
    old = session.get(Track, track_id)
    if old is None:
        raise ValueError(f"no track {track_id}")
    if not old.start_frame < at_frame <= old.end_frame:
        raise ValueError(
            f"cut at frame {at_frame} outside track {track_id} "
            f"({old.start_frame}-{old.end_frame}): both parts need a frame"
        )
    last_no = session.scalar(select(func.max(Track.track_no)).where(Track.video_id == old.video_id))
    new = Track(
        video_id=old.video_id,
        camera_id=old.camera_id,
        track_no=int(last_no or 0) + 1,
        start_frame=at_frame,
        end_frame=old.end_frame,
        start_time=old.end_time,
        end_time=old.end_time,
        num_detections=0,
    )
    session.add(new)
    session.flush()
    session.execute(
        update(Detection)
        .where(Detection.track_id == old.id, Detection.frame_idx >= at_frame)
        .values(track_id=new.id),
        execution_options={"synchronize_session": False},
    )
    moved = select(Detection.id).where(Detection.track_id == new.id)
    session.execute(
        update(Sighting)
        .where(Sighting.track_id == old.id, Sighting.detection_id.in_(moved))
        .values(track_id=new.id),
        execution_options={"synchronize_session": False},
    )
    for t in (old, new):
        f0, f1, t0, t1, n = session.execute(
            select(
                func.min(Detection.frame_idx),
                func.max(Detection.frame_idx),
                func.min(Detection.time),
                func.max(Detection.time),
                func.count(),
            ).where(Detection.track_id == t.id)
        ).one()
        if not n:
            raise ValueError(f"cutting track {track_id} at frame {at_frame} leaves a part empty")
        t.start_frame, t.end_frame, t.num_detections = int(f0), int(f1), int(n)
        t.start_time, t.end_time = _as_datetime(t0), _as_datetime(t1)
    session.flush()
    track_embedding_update(session=session, track_ids=[old.id, new.id], commit=False)
    session.expire(old)  # the bulk updates above bypass the loaded objects
    session.expire(new)
    if commit:
        session.commit()
    return new


def _as_datetime(value: datetime | str) -> datetime:
    """``min``/``max`` over a UTC time column come back as the column's type on PostgreSQL but
    as stored text on SQLite; one aware datetime either way."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
