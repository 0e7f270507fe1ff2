"""The trace answer: who the subject is, where they went, who was close (issue 22 items 3-5).

:func:`trace` builds the one document ``reidtrace trace --json`` prints and the HTML report
renders (keys pinned by ``tests/indexer/query/test_trace.py``; the schema is in docs/query.md).
It makes the persons current first (:func:`indexer.query.persons.ensure_persons`), so an answer
never mixes old and new associations. :func:`photo_subject` is how a photo picks the subject
(``reidtrace trace IMAGE``, ``evaluate-tracing --query photo`` and the demo all call it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from indexer.query.contacts import DEFAULT_MIN_SECONDS, MAX_DEPTH, find_contacts
from indexer.query.persons import ensure_persons
from indexer.query.search import ImageInput, Searcher, TrackHit, rank_value
from indexer.query.trajectory import person_tracks, visits
from indexer.settings import PersonSettings
from indexer.store import repo
from reid.errors import ReidTraceError

__all__ = ["TRACE_KEYS", "check_contact_args", "photo_subject", "photo_track_finder", "trace"]

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


def _best_hit(
    searcher: Searcher, image: ImageInput, *, box: int | None, crop: bool
) -> TrackHit | None:
    """The stored track the search ranks first for the person of ``image`` (None: no track).
    A photo showing several people needs ``box``."""
    results = searcher.search_image(image, top_k=1, mode="crop" if crop else "auto", box=box)
    if len(results) > 1:
        raise ReidTraceError(
            f"the photo shows {len(results)} people: which one?",
            hint=f"add --box N (0 to {len(results) - 1}, left to right), "
            "see `reidtrace search IMAGE`",
        )
    hits = results[0].hits
    return hits[0] if hits else None


def photo_subject(
    searcher: Searcher, image: ImageInput, *, box: int | None = None, crop: bool = False
) -> tuple[int, float]:
    """The track that looks most like the person in ``image`` (as ``reidtrace search`` ranks
    by default) and its ranking score: what :func:`trace` takes as ``track_id`` and ``score``.

    ``crop``: the photo is a person crop, embedded whole with no detector (the synthetic
    world's small crops need it: the detector misses most of them). Nobody in the photo, or
    no stored track, is a user error.
    """
    hit = _best_hit(searcher, image, box=box, crop=crop)
    if hit is None:
        raise ReidTraceError("no stored track looks like the photo", hint="ingest footage first")
    return hit.track_id, rank_value(hit)


def photo_track_finder(searcher: Searcher) -> Callable[[Path], int | None]:
    """For ``evaluate_tracing(photo_track=...)``: crop file -> the track :func:`photo_subject`
    picks for it, or None when the store has no track for it."""

    def best(crop: Path) -> int | None:
        hit = _best_hit(searcher, crop, box=None, crop=True)
        return None if hit is None else hit.track_id

    return best


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
