"""The trace answer: who the subject is, where they went, who was close (issue 22 items 3-5).

:func:`trace` builds the one document ``reidtrace trace --json`` prints and the HTML report
renders (keys pinned by ``tests/indexer/query/test_trace.py``; the schema is in docs/query.md).
It makes the persons current first (:func:`indexer.query.persons.ensure_persons`), so an answer
never mixes old and new associations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from indexer.query.contacts import DEFAULT_MIN_SECONDS, MAX_DEPTH, find_contacts
from indexer.query.persons import ensure_persons
from indexer.query.trajectory import person_tracks, visits
from indexer.settings import PersonSettings
from indexer.store import repo
from reid.errors import ReidTraceError

__all__ = ["TRACE_KEYS", "check_contact_args", "trace"]

TRACE_KEYS = ("subject", "model", "contact_definition", "trajectory", "contacts", "notes")


def check_contact_args(distance: float | None, min_seconds: float, depth: int) -> None:
    """Refuse a negative distance or time, or a depth out of range, before any store work
    (``find_contacts`` checks them again, with the same rules)."""
    if distance is not None and not distance > 0:
        raise ReidTraceError(
            f"--distance must be > 0, got {distance}", hint="e.g. --distance 2 (metres)"
        )
    if not min_seconds >= 0:
        raise ReidTraceError(
            f"--min-seconds must be >= 0, got {min_seconds}", hint="e.g. --min-seconds 5"
        )
    if not 1 <= depth <= MAX_DEPTH:
        raise ReidTraceError(
            f"--depth must be 1 to {MAX_DEPTH}, got {depth}",
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
    query: str | None = None,
    score: float | None = None,
) -> dict[str, Any]:
    """The trace document of a track's person, or of a person (see docs/query.md).

    ``query``/``score``: the photo and the search score that picked ``track_id`` (the subject
    is then of kind ``photo``). Contacts come from :func:`indexer.query.contacts.find_contacts`
    over the current persons.
    """
    check_contact_args(distance, min_seconds, depth)
    if (track_id is None) == (person_id is None):
        raise ReidTraceError("give one subject: a track id or a person id", hint="--track ID")
    ensure_persons(session, cfg)
    pid, tracks = person_tracks(session, person_id=person_id, track_id=track_id)
    trajectory = visits(session, tracks, visit_gap_s=cfg.visit_gap_s)
    cams = {c.name: c for c in repo.list_cameras(session=session)}
    flat = sorted({v.camera for v in trajectory if cams[v.camera].homography is None})
    person_of = repo.person_map(session=session)
    found = find_contacts(
        session,
        [t.id for t in tracks],
        person_of=person_of,
        distance=distance,
        min_seconds=min_seconds,
        depth=depth,
    ).to_json()
    notes = [f"{c} has no ground homography: its visits have no ground path" for c in flat]
    kind = "photo" if query is not None else "track" if track_id is not None else "person"
    return {
        "subject": {
            "kind": kind,
            "query": query,
            "person_id": pid,
            "track_ids": sorted(t.id for t in tracks),
            "score": None if score is None else round(float(score), 6),
        },
        "model": ",".join(repo.embedder_names(session=session)),
        "contact_definition": found["contact_definition"],
        "trajectory": [v.as_dict() for v in trajectory],
        "contacts": found["contacts"],
        "notes": found["notes"] + notes,
    }
