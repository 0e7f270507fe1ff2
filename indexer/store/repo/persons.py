"""Cross-camera persons: the ``person`` rows, the tracks' links to them, and the state row.

Only ``indexer.query.persons`` writes here; everything else reads. A track's link is
``track.person_id`` + ``track.person_confidence`` (one person per track).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from indexer.store.models import Camera, Detection, Person, PersonState, Sighting, Track, Video
from indexer.store.repo.batches import in_batches

__all__ = [
    "clear_persons",
    "create_persons",
    "delete_empty_persons",
    "embedder_names",
    "foot_points",
    "get_person",
    "get_person_state",
    "get_track",
    "person_map",
    "set_person_links",
    "set_person_state",
    "stale_track_count",
    "track_rows",
    "tracks_for_person",
]


def get_track(*, session: Session, track_id: int) -> Track | None:
    return session.get(Track, track_id)


def get_person(*, session: Session, person_id: int) -> Person | None:
    return session.get(Person, person_id)


def person_map(*, session: Session) -> dict[int, int]:
    """Every linked track's person: ``{track_id: person_id}`` (what the contact query groups
    by)."""
    stmt = select(Track.id, Track.person_id).where(Track.person_id.is_not(None))
    return {int(t): int(p) for t, p in session.execute(stmt)}


def tracks_for_person(*, session: Session, person_id: int) -> list[Track]:
    """The person's tracks in time order."""
    stmt = (
        select(Track)
        .where(Track.person_id == person_id)
        .order_by(Track.start_time, Track.camera_id, Track.id)
    )
    return list(session.scalars(stmt))


def track_rows(*, session: Session) -> list[tuple[Track, Camera]]:
    """Every track that association may use, with its camera: tracks of finished videos, and
    tracks of running videos once they have an embedding (their sightings are written when the
    track ends, so an embedded track no longer grows)."""
    stmt = (
        select(Track, Camera)
        .join(Camera, Camera.id == Track.camera_id)
        .join(Video, Video.id == Track.video_id)
        .where((Video.status == "done") | Track.embedding.is_not(None))
        .order_by(Track.start_time, Track.id)
    )
    return [(t, c) for t, c in session.execute(stmt)]


def stale_track_count(*, session: Session, total: bool = False) -> int:
    """How many usable tracks (see :func:`track_rows`) have no person yet (``total``: how
    many usable tracks there are)."""
    stmt = (
        select(func.count())
        .select_from(Track)
        .join(Video, Video.id == Track.video_id)
        .where((Video.status == "done") | Track.embedding.is_not(None))
    )
    if not total:
        stmt = stmt.where(Track.person_id.is_(None))
    return int(session.scalar(stmt) or 0)


def foot_points(
    *, session: Session, track_ids: Iterable[int], visible_only: bool = False
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per track, its detections' times (UTC epoch seconds) and foot points ``(n, 2)`` in ground
    units, in frame order; tracks whose camera has no ground plane are left out.

    ``visible_only`` drops boxes cut by the frame's bottom edge: their bottom is the edge, not
    the feet, so their foot point can be metres off (a close camera cuts people at the knees).
    """
    out: dict[int, tuple[list[float], list[tuple[float, float]]]] = {}
    for part in in_batches(sorted(set(track_ids))):
        stmt = (
            select(Detection.track_id, Detection.time, Detection.foot_x, Detection.foot_y)
            .where(Detection.track_id.in_(part))
            .where(Detection.foot_x.is_not(None))
            .order_by(Detection.track_id, Detection.frame_idx)
        )
        if visible_only:
            stmt = (
                stmt.join(Track, Track.id == Detection.track_id)
                .join(Camera, Camera.id == Track.camera_id)
                .where(Detection.y2 < Camera.height - 1)
            )
        for tid, t, x, y in session.execute(stmt):
            ts, xy = out.setdefault(int(tid), ([], []))
            ts.append(t.timestamp())
            xy.append((float(x), float(y)))
    return {
        tid: (np.asarray(ts, np.float64), np.asarray(xy, np.float64).reshape(-1, 2))
        for tid, (ts, xy) in out.items()
    }


def embedder_names(*, session: Session) -> list[str]:
    """The embedders whose sightings the store holds (the track embeddings come from them)."""
    return sorted(str(m) for m in session.scalars(select(Sighting.model).distinct()))


def create_persons(*, session: Session, n: int) -> list[int]:
    """``n`` new person rows (not committed); their ids."""
    rows = [Person() for _ in range(n)]
    session.add_all(rows)
    session.flush()
    return [p.id for p in rows]


def set_person_links(
    *, session: Session, links: Mapping[int, tuple[int, float]], commit: bool = True
) -> int:
    """Set ``track_id -> (person_id, confidence)``; returns the number of tracks written."""
    params = [
        {"id": tid, "person_id": pid, "person_confidence": float(conf)}
        for tid, (pid, conf) in sorted(links.items())
    ]
    if params:
        session.execute(update(Track), params)
    if commit:
        session.commit()
    return len(params)


def delete_empty_persons(*, session: Session, commit: bool = True) -> int:
    """Drop persons no track points at (their tracks were deleted with a video)."""
    used = select(Track.person_id).where(Track.person_id.is_not(None))
    n = session.execute(delete(Person).where(Person.id.not_in(used))).rowcount or 0
    if commit:
        session.commit()
    return int(n)


def clear_persons(*, session: Session, commit: bool = True) -> None:
    """Unlink every track and drop every person (a rebuild starts from here)."""
    session.execute(update(Track).values(person_id=None, person_confidence=None))
    session.execute(delete(Person))
    if commit:
        session.commit()


def get_person_state(*, session: Session) -> PersonState | None:
    return session.get(PersonState, 1)


def set_person_state(
    *, session: Session, model: str, settings: dict[str, Any], rebuilt: bool, commit: bool = True
) -> PersonState:
    """Record how the persons were built (the single row, created on first use)."""
    state = session.get(PersonState, 1)
    if state is None:
        state = PersonState(id=1, model="", settings={}, generation=0)
        session.add(state)
    state.model = model
    state.settings = dict(settings)
    if rebuilt:
        state.generation = int(state.generation or 0) + 1
    if commit:
        session.commit()
    return state
