"""The trace answer: who the subject is, where they went, who was close (issue 22 items 3-5).

:func:`trace` builds the one document ``reidtrace trace --json`` prints and the HTML report
renders (keys pinned by ``tests/indexer/query/test_trace.py``; the schema is in docs/query.md).
It makes the persons current first (:func:`indexer.query.persons.ensure_persons`), so an answer
never mixes old and new associations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from indexer.query.persons import ensure_persons
from indexer.query.trajectory import person_tracks, visits
from indexer.settings import PersonSettings
from indexer.store import repo
from reid.errors import ReidTraceError

__all__ = ["DEFAULT_DISTANCE", "DEFAULT_MIN_SECONDS", "TRACE_KEYS", "check_contact_args", "trace"]

DEFAULT_DISTANCE = {"m": 2.0, "box_heights": 1.0}
"""The contact distance when none is given (ARCHITECTURE.md): 2 m, or 1 box height."""

DEFAULT_MIN_SECONDS = 5.0

TRACE_KEYS = ("subject", "model", "contact_definition", "trajectory", "contacts", "notes")


def check_contact_args(distance: float | None, min_seconds: float, depth: int) -> None:
    """Refuse a negative distance or time, or a depth other than 1 or 2."""
    if distance is not None and not distance >= 0:
        raise ReidTraceError(
            f"--distance must be >= 0, got {distance}", hint="e.g. --distance 2 (metres)"
        )
    if not min_seconds >= 0:
        raise ReidTraceError(
            f"--min-seconds must be >= 0, got {min_seconds}", hint="e.g. --min-seconds 5"
        )
    if depth not in (1, 2):
        raise ReidTraceError(
            f"--depth must be 1 or 2, got {depth}",
            hint="1: direct contacts, 2: also contacts of contacts",
        )


def trace(
    session: Session,
    cfg: PersonSettings,
    *,
    track_id: int | None = None,
    person_id: int | None = None,
    distance: float | None = None,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    depth: int = 1,
) -> dict[str, Any]:
    """The trace document of a track's person, or of a person (see docs/query.md)."""
    check_contact_args(distance, min_seconds, depth)
    if (track_id is None) == (person_id is None):
        raise ReidTraceError("give one subject: a track id or a person id", hint="--track ID")
    ensure_persons(session, cfg)
    pid, tracks = person_tracks(session, person_id=person_id, track_id=track_id)
    trajectory = visits(session, tracks, visit_gap_s=cfg.visit_gap_s)
    cams = {c.name: c for c in repo.list_cameras(session=session)}
    flat = [cams[v.camera] for v in trajectory if cams[v.camera].homography is None]
    units = "box_heights" if flat else "m"
    notes = [
        f"{c.name} has no ground homography: its visits have no ground path"
        for c in {c.id: c for c in flat}.values()
    ]
    notes.append(
        "contacts are not computed by this build: the contact query (indexer.query.contacts) "
        "is not part of it yet"
    )
    return {
        "subject": {
            "kind": "track" if track_id is not None else "person",
            "query": None,
            "person_id": pid,
            "track_ids": sorted(t.id for t in tracks),
            "score": None,
        },
        "model": ",".join(repo.embedder_names(session=session)),
        "contact_definition": {
            "distance": DEFAULT_DISTANCE[units] if distance is None else float(distance),
            "units": units,
            "min_seconds": float(min_seconds),
            "depth": depth,
            "window_s": None,
        },
        "trajectory": [v.as_dict() for v in trajectory],
        "contacts": [],
        "notes": notes,
    }
