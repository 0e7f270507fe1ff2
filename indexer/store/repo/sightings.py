"""Sightings (the embedded crops, FAISS ids = ``Sighting.id``) and the storage form of vectors.

Vectors are stored as little-endian float32 bytes (:func:`encode_vector`), whatever the host;
track embeddings use the same form.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from indexer.store.models import Camera, Detection, Sighting, Track
from indexer.store.repo.batches import in_batches
from reid.errors import ReidTraceError

__all__ = [
    "SightingPlace",
    "all_sighting_vectors",
    "decode_vector",
    "encode_vector",
    "sighting_ids",
    "sighting_places",
    "sighting_thumbnail",
    "sighting_vectors",
    "sightings_by_ids",
    "sightings_for_track",
    "track_sighting_vectors",
]

_F4 = np.dtype("<f4")  # vectors are stored little-endian float32 whatever the host


def encode_vector(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes: the storage form of sighting vectors and track embeddings."""
    return np.ascontiguousarray(vector, dtype=_F4).tobytes()


def decode_vector(data: bytes) -> np.ndarray:
    """The float32 vector of :func:`encode_vector` (a read-only view is copied to be safe)."""
    return np.frombuffer(data, dtype=_F4).astype(np.float32)


def sightings_for_track(*, session: Session, track_id: int, limit: int = 500) -> list[Sighting]:
    """The track's embedded crops in frame order."""
    stmt = (
        select(Sighting)
        .join(Detection, Sighting.detection_id == Detection.id)
        .where(Sighting.track_id == track_id)
        .order_by(Detection.frame_idx)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def sightings_by_ids(*, session: Session, ids: Iterable[int]) -> dict[int, Sighting]:
    """Rows for FAISS hits, keyed by id (ids no longer in SQL are simply absent)."""
    wanted = sorted({int(i) for i in ids if int(i) >= 0})
    out: dict[int, Sighting] = {}
    for part in in_batches(wanted):
        out.update(
            {s.id: s for s in session.scalars(select(Sighting).where(Sighting.id.in_(part)))}
        )
    return out


class SightingPlace(NamedTuple):
    """Where a sighting was seen: its track, frame, video, camera and the track's time span."""

    sighting_id: int
    track_id: int
    frame_idx: int
    video_id: int
    camera: str
    start_time: datetime  # of the track
    end_time: datetime  # of the track


def sighting_places(
    *, session: Session, ids: Iterable[int], cameras: Sequence[str] = ()
) -> dict[int, SightingPlace]:
    """FAISS hits joined to their track and camera in one query per batch, keyed by sighting id.

    Ids no longer in SQL (a stale index) are absent; with ``cameras`` only sightings of those
    camera names are returned (the search's camera filter, applied in SQL).
    """
    wanted = sorted({int(i) for i in ids if int(i) >= 0})
    out: dict[int, SightingPlace] = {}
    for part in in_batches(wanted):
        stmt = (
            select(
                Sighting.id,
                Sighting.track_id,
                Detection.frame_idx,
                Track.video_id,
                Camera.name,
                Track.start_time,
                Track.end_time,
            )
            .join(Detection, Sighting.detection_id == Detection.id)
            .join(Track, Sighting.track_id == Track.id)
            .join(Camera, Track.camera_id == Camera.id)
            .where(Sighting.id.in_(part))
        )
        if cameras:
            stmt = stmt.where(Camera.name.in_(list(cameras)))
        out.update({int(r[0]): SightingPlace(*r) for r in session.execute(stmt)})
    return out


def sighting_thumbnail(*, session: Session, sighting_id: int) -> bytes | None:
    """The JPEG crop of a sighting (the evidence users see), or ``None`` when none was kept."""
    found = session.execute(
        select(Sighting.thumbnail).where(Sighting.id == sighting_id)
    ).one_or_none()
    if found is None:
        raise ReidTraceError(f"no sighting with id {sighting_id}", status=404)
    return found[0]


def _model_filter(model: str | None) -> ColumnElement[bool]:
    return Sighting.model == model if model is not None else Sighting.id.is_not(None)


def all_sighting_vectors(
    *, session: Session, model: str | None = None, batch: int = 10_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ids int64 (n,), vectors float32 (n, d))`` batches in id order, for index rebuilds.

    Pages by id (keyset), so memory stays at one batch and rows added meanwhile are not
    skipped or repeated. Without ``model`` all sightings must share one dimension.
    """
    if batch < 1:
        raise ValueError("batch must be >= 1")
    last = -1
    while True:
        stmt = (
            select(Sighting.id, Sighting.dim, Sighting.vector)
            .where(_model_filter(model), Sighting.id > last)
            .order_by(Sighting.id)
            .limit(batch)
        )
        rows = session.execute(stmt).all()
        if not rows:
            return
        yield _stack(rows)
        last = int(rows[-1][0])


def _stack(rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    dims = {int(r[1]) for r in rows}
    if len(dims) != 1:
        raise ValueError(f"sightings of several dimensions {sorted(dims)}: pass model=...")
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    vecs = np.frombuffer(b"".join(r[2] for r in rows), dtype=_F4).reshape(len(rows), dims.pop())
    return ids, vecs.astype(np.float32)


def sighting_ids(*, session: Session, model: str | None = None) -> np.ndarray:
    """Every sighting id (of ``model``), sorted int64: what the vector index should hold."""
    stmt = select(Sighting.id).where(_model_filter(model)).order_by(Sighting.id)
    return np.fromiter(session.scalars(stmt), np.int64)


def sighting_vectors(*, session: Session, ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of the sightings among ``ids`` that exist, in id order."""
    wanted = sorted({int(i) for i in ids})
    rows: list[Any] = []
    for part in in_batches(wanted):
        stmt = select(Sighting.id, Sighting.dim, Sighting.vector).where(Sighting.id.in_(part))
        rows.extend(session.execute(stmt).all())
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    rows.sort(key=lambda r: r[0])
    return _stack(rows)


def track_sighting_vectors(
    *, session: Session, track_ids: Iterable[int], model: str | None = None
) -> dict[int, np.ndarray]:
    """Every sighting vector of each track (of ``model``), keyed by track id: (n, d) float32.

    Search scores a candidate track by all of its crops, not only those the index returned.
    """
    wanted = sorted({int(t) for t in track_ids})
    rows: dict[int, list[Any]] = {}
    for part in in_batches(wanted):
        stmt = select(Sighting.track_id, Sighting.id, Sighting.dim, Sighting.vector).where(
            Sighting.track_id.in_(part), _model_filter(model)
        )
        for r in session.execute(stmt):
            rows.setdefault(int(r[0]), []).append(r[1:])
    return {tid: _stack(sorted(r, key=lambda x: x[0]))[1] for tid, r in rows.items()}
