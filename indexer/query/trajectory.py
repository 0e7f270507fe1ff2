"""Trajectories: where a person was, when (issue 22 item 3).

A trajectory is the time-ordered list of *visits*: the person's tracks of one camera, joined
when the next starts at most ``visit_gap_s`` after the previous ends (a short occlusion or a
tracker fragment is one visit, as the synthetic world's truth counts absences up to 2 s), with
``enter``/``leave`` times, a confidence (the duration-weighted mean of the tracks'
``person_confidence``) and, where the camera has a ground plane, the ground path: foot points in
metres, one per ``path_step_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from indexer.store import repo
from indexer.store.models import Track
from reid.errors import ReidTraceError

__all__ = ["VISIT_GAP_S", "Visit", "person_tracks", "trajectory", "visits"]

VISIT_GAP_S = 2.0
"""Tracks of one camera this close in time are one visit (the world truth's absence rule)."""

PATH_STEP_S = 1.0
"""One ground-path point per this many seconds: enough to draw a walk, small enough for JSON."""


@dataclass
class Visit:
    """One stay in one camera: one or more tracks."""

    camera: str
    video_id: int
    track_ids: list[int]
    enter: datetime
    leave: datetime
    confidence: float
    ground_path: list[tuple[datetime, float, float]] | None = field(default=None)

    def as_dict(self) -> dict:
        """The trace schema's trajectory row (ISO-8601 UTC times)."""
        path = (
            None
            if self.ground_path is None
            else [[t.isoformat(), round(x, 2), round(y, 2)] for t, x, y in self.ground_path]
        )
        return {
            "camera": self.camera,
            "video_id": self.video_id,
            "track_ids": list(self.track_ids),
            "enter": self.enter.isoformat(),
            "leave": self.leave.isoformat(),
            "confidence": round(float(self.confidence), 3),
            "ground_path": path,
        }


def visits(
    session: Session,
    tracks: list[Track],
    *,
    visit_gap_s: float = VISIT_GAP_S,
    path_step_s: float = PATH_STEP_S,
    ground_path: bool = True,
) -> list[Visit]:
    """The visits made of ``tracks`` (any order), ordered by enter time then camera."""
    if visit_gap_s < 0 or path_step_s <= 0:
        raise ReidTraceError(
            f"bad trajectory options: visit_gap_s={visit_gap_s}, path_step_s={path_step_s}",
            hint="visit_gap_s must be >= 0 and path_step_s > 0",
        )
    cams = {c.id: c for c in repo.list_cameras(session=session)}
    out: list[Visit] = []
    groups: list[list[Track]] = []
    for t in sorted(tracks, key=lambda t: (t.camera_id, t.start_time, t.id)):
        last = groups[-1] if groups else None
        if (
            last is not None
            and last[0].camera_id == t.camera_id
            and (t.start_time - max(x.end_time for x in last)).total_seconds() <= visit_gap_s
        ):
            last.append(t)
        else:
            groups.append([t])
    grounded = [t.id for g in groups for t in g if cams[g[0].camera_id].homography is not None]
    feet = repo.foot_points(session=session, track_ids=grounded) if ground_path else {}
    for g in groups:
        cam = cams[g[0].camera_id]
        weights = [max((t.end_time - t.start_time).total_seconds(), 1e-3) for t in g]
        confs = [1.0 if t.person_confidence is None else t.person_confidence for t in g]
        conf = sum(w * c for w, c in zip(weights, confs, strict=True)) / sum(weights)
        path = None
        if ground_path and cam.homography is not None:
            pts = sorted(
                (ts, float(x), float(y))
                for t in g
                if t.id in feet
                for ts, (x, y) in zip(*feet[t.id], strict=True)
            )
            path = []
            next_t = float("-inf")
            for ts, x, y in pts:
                if ts >= next_t:
                    path.append((datetime.fromtimestamp(ts, g[0].start_time.tzinfo), x, y))
                    next_t = ts + path_step_s
        out.append(
            Visit(
                camera=cam.name,
                video_id=g[0].video_id,
                track_ids=[t.id for t in g],
                enter=min(t.start_time for t in g),
                leave=max(t.end_time for t in g),
                confidence=conf,
                ground_path=path,
            )
        )
    out.sort(key=lambda v: (v.enter, v.camera))
    return out


def person_tracks(
    session: Session, *, person_id: int | None = None, track_id: int | None = None
) -> tuple[int | None, list[Track]]:
    """The subject's person id and tracks: a person's tracks, or a track's person's tracks (the
    track alone when it has no person). Unknown ids raise ``ReidTraceError``."""
    if (person_id is None) == (track_id is None):
        raise ValueError("give exactly one of person_id, track_id")
    if track_id is not None:
        track = repo.get_track(session=session, track_id=track_id)
        if track is None:
            raise ReidTraceError(
                f"no track with id {track_id}", hint="see `reidtrace search` for track ids"
            )
        if track.person_id is None:
            return None, [track]
        person_id = track.person_id
    assert person_id is not None
    tracks = repo.tracks_for_person(session=session, person_id=person_id)
    if not tracks:
        raise ReidTraceError(
            f"no person with id {person_id}",
            hint="trace a track (--track ID) to see its person's id",
        )
    return person_id, tracks


def trajectory(
    session: Session, *, person_id: int | None = None, track_id: int | None = None
) -> list[Visit]:
    """The time-ordered visits of a person, or of the person a track belongs to."""
    _, tracks = person_tracks(session, person_id=person_id, track_id=track_id)
    return visits(session, tracks)
