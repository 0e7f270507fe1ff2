"""Contacts: who was close to a subject, for how long, and the frames that prove it (issue 22).

The definition is ``reid.contacts`` (ARCHITECTURE.md, *Co-occurrence contact*), the very code
that writes the synthetic world's ``contacts.csv``; this module only gathers its input from the
store and explains its output:

1. for every camera the subject was in, the tracks that overlap the subject's tracks in time
   (an indexed interval query, below);
2. their detections in those frames, each track mapped to its cross-camera person
   (``person_of``; a track without a person is its own person, never merged with another);
3. one ``compute_contacts`` call over all cameras, so exposure adds up across cameras and a
   moment seen by two overlapping cameras counts once; ``close_pairs`` gives the frames behind
   each contact, from which the evidence (first, closest, last frame per camera) is picked.

Three ways to measure "close", chosen per camera:

* ``"m"``: the camera has a ground homography, so detections carry ``foot_x/foot_y`` in metres:
  within ``distance`` metres (default 2.0);
* ``"box_heights"``: no homography: the distance between the box bottoms' centres in units of
  the two people's mean box height (default 1.0);
* ``"co-appearance"``: a gallery of crops (``video.kind == "crops"``, e.g. ``ingest --market``)
  has no positions at all: each crop stands for ``window_s`` seconds of presence centred on it
  (default 2.0 s), and two people are "close" while both are present in the camera.

All three go through the one ``compute_contacts`` call with distances divided by each camera's
threshold (so the call's ``d`` is 1 everywhere); reported distances are scaled back to the
camera's own units. Thresholds are inclusive (``<= d``, exposure ``>= T``), as in
``reid.contacts``. Interpolated boxes (confidence 0) are positions like any other.

Interval query: a track lies inside its video, so a track overlapping ``[s, e]`` starts no
earlier than the earliest start of the camera's videos that overlap ``[s, e]``; the candidates
are then one range scan of the ``track(camera_id, start_time)`` index between that start and
``e``, whatever the size of the store (no new index is needed). Detections are read by
``detection(track_id, frame_idx)`` ranges.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.store.models import Camera, Detection, Sighting, Track, Video
from indexer.store.repo.batches import in_batches
from reid.contacts import Observations, close_pairs, compute_contacts
from reid.errors import ReidTraceError

__all__ = [
    "DEFAULT_BOX_HEIGHTS",
    "DEFAULT_BRIDGE_S",
    "DEFAULT_DISTANCE_M",
    "DEFAULT_MIN_SECONDS",
    "DEFAULT_WINDOW_S",
    "MAX_DEPTH",
    "Contact",
    "ContactDefinition",
    "Contacts",
    "Evidence",
    "find_contacts",
]

DEFAULT_DISTANCE_M = 2.0
DEFAULT_BOX_HEIGHTS = 1.0
DEFAULT_MIN_SECONDS = 5.0
DEFAULT_WINDOW_S = 2.0
DEFAULT_BRIDGE_S = 2.0
MAX_DEPTH = 3
EVIDENCE_PER_CAMERA = 3  # first, closest, last

_COAPPEAR_STEPS = 4
"""A crop's presence window is laid on a grid of ``window_s / 4``: fine enough that exposure is
within a quarter window of the true overlap, coarse enough to keep a gallery's samples few."""

Units = Literal["m", "box_heights", "co-appearance"]
PersonKey = tuple[str, int]  # ("p", person id) or ("t", track id) for a track with no person
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIT_RANK: dict[str, int] = {"m": 0, "box_heights": 1, "co-appearance": 2}


# --------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Evidence:
    """One frame that proves a contact: both boxes, and how far apart they were."""

    camera: str
    video_id: int
    frame_idx: int
    time: datetime
    subject_box: tuple[float, float, float, float]
    contact_box: tuple[float, float, float, float]
    distance: float | None  # in the camera's units; None for a co-appearance

    def to_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "video_id": self.video_id,
            "frame_idx": self.frame_idx,
            "time": _iso(self.time),
            "subject_box": [round(v, 2) for v in self.subject_box],
            "contact_box": [round(v, 2) for v in self.contact_box],
            "distance": None if self.distance is None else round(self.distance, 3),
        }


@dataclass(frozen=True)
class Contact:
    """One person who was within d of the subject for at least T seconds (a schema entry)."""

    person_id: int | None  # None: a track with no cross-camera person (``track_ids`` has it)
    track_ids: tuple[int, ...]  # the contact's tracks that came within d
    order: int  # 1 = the subject's contact; 2 = a contact of an order-1 contact, ...
    via_person_id: int | None  # for order >= 2: the person id of the contact it came through
    units: Units  # of ``closest``: metres where any camera measured metres
    exposure_s: float  # seconds within d, over all cameras, each moment counted once
    per_camera: tuple[tuple[str, float], ...]  # (camera, seconds within d there)
    closest: float | None  # in ``units``; None for co-appearances
    first: datetime
    last: datetime
    thumbnail_sighting_id: int | None  # the best-quality sighting of ``track_ids``
    evidence: tuple[Evidence, ...]
    via_track_ids: tuple[int, ...] = ()  # the tracks of the contact it came through (order >= 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "track_ids": list(self.track_ids),
            "order": self.order,
            "via_person_id": self.via_person_id,
            "units": self.units,
            "exposure_s": round(self.exposure_s, 3),
            "per_camera": [
                {"camera": cam, "exposure_s": round(sec, 3)} for cam, sec in self.per_camera
            ],
            "closest": None if self.closest is None else round(self.closest, 3),
            "first": _iso(self.first),
            "last": _iso(self.last),
            "thumbnail_sighting_id": self.thumbnail_sighting_id,
            "evidence": [e.to_json() for e in self.evidence],
        }


@dataclass(frozen=True)
class ContactDefinition:
    """What "contact" meant for this answer (the schema's ``contact_definition``)."""

    distance: float | None  # in ``units``; None when only co-appearances could be measured
    units: Units  # the subject's best camera units: m > box_heights > co-appearance
    min_seconds: float
    depth: int
    window_s: float | None  # set when a gallery of crops was involved
    distance_m: float  # the threshold in metre cameras
    box_heights: float  # the threshold in cameras without a homography
    bridge_s: float  # a person's absences up to this long in one camera are interpolated

    def to_json(self) -> dict[str, Any]:
        return {
            "distance": self.distance,
            "units": self.units,
            "min_seconds": self.min_seconds,
            "depth": self.depth,
            "window_s": self.window_s,
        }


@dataclass(frozen=True)
class Contacts:
    """``find_contacts``' answer: rows ranked by order, then exposure (descending)."""

    rows: tuple[Contact, ...]
    notes: tuple[str, ...]
    definition: ContactDefinition

    def to_json(self) -> dict[str, Any]:
        """The trace document's ``contact_definition``, ``contacts`` and ``notes`` keys."""
        return {
            "contact_definition": self.definition.to_json(),
            "contacts": [r.to_json() for r in self.rows],
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------- entry


def find_contacts(
    session: Session,
    subject_track_ids: Iterable[int],
    *,
    person_of: Mapping[int, int],
    distance: float | None = None,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    depth: int = 1,
    box_heights: float | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    bridge_s: float = DEFAULT_BRIDGE_S,
    tracks_of: Callable[[int], Sequence[int]] | None = None,
) -> Contacts:
    """Everyone within ``distance`` of the subject for at least ``min_seconds`` in total.

    ``subject_track_ids`` are the subject's tracks (one person, possibly several cameras).
    ``person_of`` maps a track id to its cross-camera person id; a track it does not map is a
    person of its own; tracks of the subject's own person(s) are never contacts. ``distance``
    is in the subject's best units (metres where any of its cameras has a ground homography,
    else box heights; defaults 2.0 m and 1.0 box heights); ``box_heights`` overrides the
    threshold in cameras without a homography, ``window_s`` the co-appearance window of crop
    galleries. ``depth`` 2 or 3 adds contacts of contacts (``order`` 2, 3) that are not the
    subject or a contact of a lower order; ``tracks_of`` gives a person's tracks for those
    (default: ``person_of`` inverted).
    """
    ids = _check_ids(subject_track_ids)
    _check_positive("min_seconds", min_seconds, zero_ok=True, hint="the default is 5.0 seconds")
    if distance is not None:
        _check_positive("distance", distance, hint="e.g. 2.0 (metres) or 1.0 (box heights)")
    if box_heights is not None:
        _check_positive("box_heights", box_heights, hint="the default is 1.0 box heights")
    _check_positive("window_s", window_s, hint="the default is 2.0 seconds")
    _check_positive("bridge_s", bridge_s, zero_ok=True, hint="0 = off; the default is 2.0 s")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ReidTraceError(
            f"contact depth must be an integer from 1 to {MAX_DEPTH}, got {depth!r}",
            hint="1 = the subject's contacts, 2 = also their contacts (second order)",
        )
    search = _Search(session, person_of, tracks_of)
    subject = search.tracks(ids)
    missing = sorted(set(ids) - {t.id for t in subject})
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ReidTraceError(
            f"unknown track id(s): {shown}",
            hint="take track ids from `reidtrace search --json` or a trace's trajectory",
            status=404,
        )
    cams = search.cameras({t.camera_id for t in subject})
    present = {c.mode for c in cams.values()}
    units: Units = min(present, key=lambda m: _UNIT_RANK[m])  # type: ignore[assignment]
    d_m = distance if distance is not None and units == "m" else DEFAULT_DISTANCE_M
    if box_heights is not None:
        d_bh = box_heights
    elif distance is not None and units == "box_heights":
        d_bh = distance
    else:
        d_bh = DEFAULT_BOX_HEIGHTS
    definition = ContactDefinition(
        distance={"m": d_m, "box_heights": d_bh}.get(units),
        units=units,
        min_seconds=float(min_seconds),
        depth=depth,
        window_s=window_s if "co-appearance" in present else None,
        distance_m=d_m,
        box_heights=d_bh,
        bridge_s=float(bridge_s),
    )
    search.definition = definition
    if distance is not None and units == "co-appearance":
        search.notes.append(
            "distance does not apply: the subject was only seen in galleries of crops, "
            "which have no positions"
        )

    own = {search.key(t.id) for t in subject}
    seen: set[PersonKey] = set(own)
    rows: list[Contact] = []
    frontier: list[tuple[PersonKey | None, list[int]]] = [(None, ids)]
    for order in range(1, depth + 1):
        found: dict[PersonKey, Contact] = {}
        for via, track_ids in frontier:
            for key, contact in search.contacts_of(track_ids, exclude=seen, order=order, via=via):
                if key not in found or contact.exposure_s > found[key].exposure_s:
                    found[key] = contact
        ranked = sorted(found.items(), key=lambda kv: (-kv[1].exposure_s, _key_sort(kv[0])))
        rows += [c for _, c in ranked]
        seen |= set(found)
        frontier = [(key, search.tracks_of_person(key)) for key, _ in ranked]
    return Contacts(rows=tuple(rows), notes=tuple(search.notes), definition=definition)


# --------------------------------------------------------------------------------- search


@dataclass(frozen=True)
class _TrackRow:
    id: int
    video_id: int
    camera_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class _VideoRow:
    id: int
    camera_id: int
    start: datetime
    end: datetime  # start + the frames it has (or will have) / fps: no track ends later
    start_us: int  # microseconds since the epoch
    fps: float
    kind: str


@dataclass(frozen=True)
class _CameraRow:
    id: int
    name: str
    mode: Units


class _Search:
    """The store reads of one ``find_contacts`` call, with cameras and videos cached."""

    def __init__(
        self,
        session: Session,
        person_of: Mapping[int, int],
        tracks_of: Callable[[int], Sequence[int]] | None,
    ) -> None:
        if not isinstance(person_of, Mapping):
            raise TypeError(
                f"person_of must be a Mapping of track id -> person id, got {person_of!r}"
            )
        self.session = session
        self.person_of = person_of
        self._tracks_of = tracks_of
        self._inverse: dict[int, list[int]] | None = None
        self._cameras: dict[int, _CameraRow] = {}
        self._videos: dict[int, list[_VideoRow]] = {}  # by camera
        self._video: dict[int, _VideoRow] = {}
        self.notes: list[str] = []
        self.definition: ContactDefinition | None = None

    # --- identities

    def key(self, track_id: int) -> PersonKey:
        pid = self.person_of.get(track_id)
        return ("t", int(track_id)) if pid is None else ("p", int(pid))

    def tracks_of_person(self, key: PersonKey) -> list[int]:
        kind, value = key
        if kind == "t":
            return [value]
        if self._tracks_of is not None:
            return sorted({int(t) for t in self._tracks_of(value)})
        if self._inverse is None:  # only depth >= 2 needs it: one pass over the mapping
            self._inverse = defaultdict(list)
            for tid, pid in self.person_of.items():
                self._inverse[int(pid)].append(int(tid))
        return sorted(self._inverse.get(value, []))

    # --- store reads

    def tracks(self, ids: Sequence[int]) -> list[_TrackRow]:
        out = []
        for part in in_batches(sorted(set(ids))):
            stmt = select(
                Track.id, Track.video_id, Track.camera_id, Track.start_time, Track.end_time
            ).where(Track.id.in_(part))
            out += [_TrackRow(*row) for row in self.session.execute(stmt)]
        return out

    def cameras(self, ids: Iterable[int]) -> dict[int, _CameraRow]:
        todo = sorted(set(ids) - set(self._cameras))
        if todo:
            crops: set[int] = set()
            for part in in_batches(todo):
                stmt = select(Camera.id, Camera.name, Camera.homography, Camera.ground_units)
                for cid, name, hom, gunits in self.session.execute(stmt.where(Camera.id.in_(part))):
                    mode: Units = "m" if hom is not None and gunits == "m" else "box_heights"
                    self._cameras[int(cid)] = _CameraRow(int(cid), name, mode)
                stmt = select(Video.camera_id).where(
                    Video.camera_id.in_(part), Video.kind == "crops"
                )
                crops |= {int(c) for c in self.session.scalars(stmt.distinct())}
            for cid in crops:
                self._cameras[cid] = _CameraRow(cid, self._cameras[cid].name, "co-appearance")
        return {i: self._cameras[i] for i in ids}

    def videos(self, camera_id: int) -> list[_VideoRow]:
        if camera_id not in self._videos:
            stmt = select(
                Video.id,
                Video.start_time,
                Video.fps,
                Video.num_frames,
                Video.frames_done,
                Video.kind,
            ).where(Video.camera_id == camera_id)
            rows = []
            for vid, start, fps, nframes, done, kind in self.session.execute(stmt):
                span = timedelta(seconds=max(nframes, done, 1) / fps)
                start_us = _micros(start)
                rows.append(_VideoRow(vid, camera_id, start, start + span, start_us, fps, kind))
            self._videos[camera_id] = rows
            self._video.update({v.id: v for v in rows})
        return self._videos[camera_id]

    def overlapping(self, camera_id: int, start: datetime, end: datetime) -> list[_TrackRow]:
        """Tracks of the camera overlapping ``[start, end]``: one bounded index range scan."""
        vids = [v for v in self.videos(camera_id) if v.start <= end and v.end >= start]
        if not vids:
            return []
        lo = min(v.start for v in vids)
        stmt = select(
            Track.id, Track.video_id, Track.camera_id, Track.start_time, Track.end_time
        ).where(
            Track.camera_id == camera_id,
            Track.start_time >= lo,
            Track.start_time <= end,
            Track.end_time >= start,
        )
        return [_TrackRow(*row) for row in self.session.execute(stmt)]

    def detections(self, tracks: Sequence[_TrackRow], start: datetime, end: datetime) -> np.ndarray:
        """Rows ``(track_id, video_id, frame_idx, x1, y1, x2, y2, confidence, foot_x, foot_y)``
        of ``tracks`` between ``start`` and ``end`` (inclusive), as float64 (NaN = no foot)."""
        by_video: dict[int, list[int]] = defaultdict(list)
        for t in tracks:
            by_video[t.video_id].append(t.id)
        parts = []
        for vid, tids in by_video.items():
            v = self._video[vid]
            lo = math.ceil((_micros(start) - v.start_us) * v.fps / 1e6 - 1e-6)
            hi = math.floor((_micros(end) - v.start_us) * v.fps / 1e6 + 1e-6)
            for part in in_batches(sorted(tids)):
                stmt = select(
                    Detection.track_id,
                    Detection.video_id,
                    Detection.frame_idx,
                    Detection.x1,
                    Detection.y1,
                    Detection.x2,
                    Detection.y2,
                    Detection.confidence,
                    Detection.foot_x,
                    Detection.foot_y,
                ).where(
                    Detection.track_id.in_(part),
                    Detection.frame_idx >= lo,
                    Detection.frame_idx <= hi,
                )
                rows = self.session.execute(stmt).all()
                if rows:
                    parts.append(np.array(rows, dtype=np.float64))  # None -> NaN
        return np.concatenate(parts) if parts else np.zeros((0, 10))

    def best_sightings(self, track_sets: Mapping[PersonKey, Iterable[int]]) -> dict[PersonKey, int]:
        owner = {int(t): key for key, ts in track_sets.items() for t in ts}
        best: dict[PersonKey, tuple[float, int]] = {}
        for part in in_batches(sorted(owner)):
            stmt = select(Sighting.track_id, Sighting.id, Sighting.quality).where(
                Sighting.track_id.in_(part)
            )
            for tid, sid, quality in self.session.execute(stmt):
                key = owner[int(tid)]
                cand = (-float(quality), int(sid))
                if key not in best or cand < best[key]:
                    best[key] = cand
        return {k: sid for k, (_, sid) in best.items()}

    # --- one order

    def contacts_of(
        self,
        track_ids: Sequence[int],
        *,
        exclude: set[PersonKey],
        order: int,
        via: PersonKey | None,
    ) -> list[tuple[PersonKey, Contact]]:
        """The contacts of the person whose tracks are ``track_ids`` (not those in ``exclude``)."""
        d = self.definition
        subject = self.tracks(track_ids)
        if d is None or not subject:
            return []
        subject_ids = {t.id for t in subject}
        cams = self.cameras({t.camera_id for t in subject})
        for t in subject:
            self.videos(t.camera_id)
        self._note_modes(cams.values())
        # crops: co-appearance reaches one window out; elsewhere a gap up to bridge_s between
        # two of the subject's tracks is bridged, so the time between them is searched too
        bridge = timedelta(seconds=d.bridge_s)
        reach = {
            c.id: timedelta(seconds=d.window_s or DEFAULT_WINDOW_S)
            if c.mode == "co-appearance"
            else timedelta(0)
            for c in cams.values()
        }
        join = {c.id: timedelta(0) if c.mode == "co-appearance" else bridge for c in cams.values()}
        parts: list[np.ndarray] = []
        for cam_id, intervals in _merged_intervals(subject, reach, join).items():
            own = [t for t in subject if t.camera_id == cam_id]
            margin = join[cam_id]  # a contact's own gaps at the edges are bridged too
            for s, e in intervals:
                cands = [
                    t
                    for t in self.overlapping(cam_id, s - margin, e + margin)
                    if t.id not in subject_ids and self.key(t.id) not in exclude
                ]
                if not cands:
                    continue
                for t in cands:
                    self.videos(t.camera_id)
                within = [t for t in own if t.start <= e and t.end >= s]
                parts.append(self.detections(within + cands, s - margin, e + margin))
        if not parts:
            return []
        det = np.concatenate(parts)
        det = det[np.unique(det[:, :3], axis=0, return_index=True)[1]]  # intervals may overlap
        return self._assemble(det, subject_ids, order=order, via=via)

    def _note_modes(self, cams: Iterable[_CameraRow]) -> None:
        d = self.definition
        if d is None:
            return
        for c in sorted(cams, key=lambda c: c.name):
            if c.mode == "box_heights":
                note = (
                    f"{c.name} has no ground homography: contacts there are within "
                    f"{d.box_heights:g} box heights"
                )
            elif c.mode == "co-appearance":
                note = (
                    f"{c.name} is a gallery of crops (no positions): contacts there are "
                    f"co-appearances within {d.window_s:g} s"
                )
            else:
                continue
            if note not in self.notes:
                self.notes.append(note)

    def _assemble(
        self, det: np.ndarray, subject_ids: set[int], *, order: int, via: PersonKey | None
    ) -> list[tuple[PersonKey, Contact]]:
        """Run the shared definition on the detections and explain each contact it finds."""
        d = self.definition
        if d is None:
            return []
        keys: list[PersonKey] = []
        code_of: dict[PersonKey, int] = {}
        codes = np.empty(len(det), np.int64)
        for i, tid in enumerate(det[:, 0].astype(np.int64).tolist()):
            if tid in subject_ids:
                codes[i] = 0  # the subject: the smallest code, so close pairs list it first
                continue
            k = self.key(tid)
            if k not in code_of:
                keys.append(k)
                code_of[k] = len(keys)
            codes[i] = code_of[k]
        smp = self._samples(det, codes)
        if smp is None:
            return []
        obs = smp.obs
        rows = [
            r
            for r in compute_contacts(obs, distance=1.0, min_seconds=d.min_seconds)
            if r.subject == 0
        ]
        if not rows:
            return []
        pairs = close_pairs(obs, distance=1.0)
        mine = obs.person[pairs.a] == 0
        pa, pb, pdist = pairs.a[mine], pairs.b[mine], pairs.distance[mine]
        by_contact: dict[int, list[Any]] = defaultdict(list)
        for r in rows:
            by_contact[r.contact].append(r)
        track_sets: dict[PersonKey, tuple[int, ...]] = {}
        out: dict[PersonKey, dict[str, Any]] = {}
        for code, crow in by_contact.items():
            key = keys[code - 1]
            sel = obs.person[pb] == code
            a, b, dist = pa[sel], pb[sel], pdist[sel]
            seen_tracks = smp.track[b]
            track_sets[key] = tuple(sorted(set(seen_tracks[seen_tracks >= 0].tolist())))
            modes = {r.camera: self._cameras[r.camera].mode for r in crow}
            units: Units = min(modes.values(), key=lambda m: _UNIT_RANK[m])
            closest = min(
                r.min_distance * self._scale_back(r.camera)
                for r in crow
                if modes[r.camera] == units
            )
            evidence: list[Evidence] = []
            for cam in sorted(modes, key=lambda c: self._cameras[c].name):
                here = obs.camera[a] == cam
                evidence += self._evidence(smp, a[here], b[here], dist[here], cam)
            out[key] = {
                "person_id": key[1] if key[0] == "p" else None,
                "track_ids": track_sets[key],
                "order": order,
                "via_person_id": via[1] if via is not None and via[0] == "p" else None,
                "units": units,
                "exposure_s": crow[0].total_exposure_s,
                "per_camera": tuple(
                    sorted(
                        ((self._cameras[r.camera].name, r.exposure_s) for r in crow),
                        key=lambda x: (-x[1], x[0]),
                    )
                ),
                "closest": None if units == "co-appearance" else closest,
                "first": min(e.time for e in evidence),
                "last": max(e.time for e in evidence),
                "evidence": tuple(evidence),
                "via_track_ids": tuple(self.tracks_of_person(via)) if via is not None else (),
            }
        thumbs = self.best_sightings(track_sets)
        return [
            (key, Contact(thumbnail_sighting_id=thumbs.get(key), **fields))
            for key, fields in out.items()
        ]

    def _scale_back(self, camera_id: int) -> float:
        """The factor from a normalised distance (1 = the threshold) to the camera's units."""
        d = self.definition
        mode = self._cameras[camera_id].mode
        if d is None or mode == "co-appearance":
            return 0.0
        return d.distance_m if mode == "m" else d.box_heights

    def _samples(self, det: np.ndarray, codes: np.ndarray) -> _Samples | None:
        """The detections as positions, ready for the shared definition (see ``_Samples``)."""
        d = self.definition
        if d is None or len(det) == 0:
            return None
        video = [self._video[int(v)] for v in det[:, 1].tolist()]
        cam = np.array([v.camera_id for v in video], np.int64)
        fps = np.array([v.fps for v in video])
        t_us = np.array([v.start_us for v in video], np.int64) + np.rint(
            det[:, 2] * (1e6 / fps)
        ).astype(np.int64)
        ref = int(t_us.min())
        rel = (t_us - ref) / 1e6
        mode = np.array([self._cameras[int(c)].mode for c in cam])
        n = len(det)
        cols: dict[str, np.ndarray] = {
            "src": np.arange(n),
            "person": codes,
            "camera": cam,
            "frame": np.rint(rel * fps).astype(np.int64),
            "rel": rel,
            "dt": 1.0 / fps,
            "x": np.zeros(n),
            "y": np.zeros(n),
            "scale": np.ones(n),
            "video": det[:, 1].astype(np.int64),
            "frame_idx": det[:, 2].astype(np.int64),
            "track": det[:, 0].astype(np.int64),
            "box": det[:, 3:7].copy(),
            "conf": det[:, 7].copy(),
            "bridge": np.array([math.floor(d.bridge_s * f + 1e-9) for f in fps.tolist()]),
        }
        keep = np.ones(n, bool)
        metric = mode == "m"
        if metric.any():
            cols["x"][metric], cols["y"][metric] = det[metric, 8], det[metric, 9]
            cols["scale"][metric] = d.distance_m
            no_foot = metric & ~(np.isfinite(det[:, 8]) & np.isfinite(det[:, 9]))
            keep &= ~no_foot
            if no_foot.any():
                note = (
                    f"{int(no_foot.sum())} positions without a ground point (a box bottom on or "
                    "above the horizon) were left out"
                )
                self.notes.append(note)
        boxes = mode == "box_heights"
        if boxes.any():
            cols["x"][boxes] = (det[boxes, 3] + det[boxes, 5]) / 2.0
            cols["y"][boxes] = det[boxes, 6]
            height = np.maximum(det[boxes, 6] - det[boxes, 4], 1e-6)
            cols["scale"][boxes] = height * d.box_heights
        crops = mode == "co-appearance"
        cols["bridge"][crops] = 0
        if crops.any():
            # each crop stands for window_s of presence centred on it, on a window_s / 4 grid
            step = (d.window_s or DEFAULT_WINDOW_S) / _COAPPEAR_STEPS
            idx = np.flatnonzero(crops)
            first = np.floor(rel[idx] / step).astype(np.int64) - _COAPPEAR_STEPS // 2
            cells = (first[:, None] + np.arange(_COAPPEAR_STEPS)[None, :]).reshape(-1)
            rep = np.repeat(idx, _COAPPEAR_STEPS)
            keep[idx] = False
            for k, v in cols.items():
                cols[k] = np.concatenate([v, v[rep]])
            cols["frame"][n:] = cells
            cols["rel"][n:] = cells * step
            cols["dt"][n:] = step
            keep = np.concatenate([keep, np.ones(len(rep), bool)])
        cols = {k: v[keep] for k, v in cols.items()}
        # one sample per (person, camera, frame): the most confident detection
        order = np.lexsort(
            (cols["src"], -cols["conf"], cols["frame"], cols["camera"], cols["person"])
        )
        grp = np.stack([cols[k][order] for k in ("person", "camera", "frame")], axis=1)
        first_of = np.r_[True, np.any(grp[1:] != grp[:-1], axis=1)] if len(grp) else grp[:, 0] > 0
        cols = {k: v[order[first_of]] for k, v in cols.items()}
        cols = _bridge(cols)
        if len(cols["person"]) == 0:
            return None
        obs = Observations(
            person=cols["person"],
            camera=cols["camera"],
            frame=cols["frame"],
            time=ref / 1e6 + cols["rel"],
            x=cols["x"],
            y=cols["y"],
            dt=cols["dt"],
            scale=cols["scale"],
        )
        return _Samples(
            obs=obs,
            video=cols["video"],
            frame_idx=cols["frame_idx"],
            track=cols["track"],
            box=cols["box"],
            real=cols["conf"] >= 0,
        )

    def _evidence(
        self, smp: _Samples, a: np.ndarray, b: np.ndarray, dist: np.ndarray, camera_id: int
    ) -> list[Evidence]:
        """First, closest and last frame within d in one camera (co-appearances: first, last),
        taken from frames where both were seen when there are any (not bridged positions)."""
        if len(a) == 0:
            return []
        both = smp.real[a] & smp.real[b]
        if both.any():
            a, b, dist = a[both], b[both], dist[both]
        t = smp.obs.time[a]
        mode = self._cameras[camera_id].mode
        picks = [int(np.argmin(t))]
        if mode != "co-appearance":
            picks.append(int(np.lexsort((t, dist))[0]))
        picks.append(int(np.argmax(t)))
        factor = self._scale_back(camera_id)
        out: list[Evidence] = []
        for p in sorted(set(picks), key=lambda i: (t[i], i)):
            v = self._video[int(smp.video[a[p]])]
            frame_idx = int(smp.frame_idx[a[p]])
            when = _EPOCH + timedelta(microseconds=v.start_us + round(frame_idx * 1e6 / v.fps))
            if out and out[-1].time == when and out[-1].video_id == v.id:
                continue  # a co-appearance's first and last may be the same crop
            out.append(
                Evidence(
                    camera=self._cameras[camera_id].name,
                    video_id=v.id,
                    frame_idx=frame_idx,
                    time=when,
                    subject_box=_box(smp.box[a[p]]),
                    contact_box=_box(smp.box[b[p]]),
                    distance=None if mode == "co-appearance" else float(dist[p] * factor),
                )
            )
        return out[:EVIDENCE_PER_CAMERA]


@dataclass(frozen=True)
class _Samples:
    """``Observations`` (positions divided by each camera's threshold, so ``d`` = 1) and, per
    sample, what evidence needs: video, frame, track (-1 when bridged), box, seen or bridged."""

    obs: Observations
    video: np.ndarray
    frame_idx: np.ndarray
    track: np.ndarray
    box: np.ndarray
    real: np.ndarray


def _bridge(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fill a person's short absences in one camera (occlusion) with interpolated positions.

    ``cols`` is sorted by (person, camera, frame). Between two consecutive samples of the same
    person, camera and video that are 2 .. ``bridge`` frames apart, every missing frame gets a
    sample on the straight line between them (position, scale, box), with ``conf`` -1 and
    ``track`` -1: a person hidden behind others for a moment has not left, and the truth
    (``reid.contacts`` on true positions) keeps counting them.
    """
    n = len(cols["person"])
    if n < 2:
        return cols
    same = (
        (cols["person"][1:] == cols["person"][:-1])
        & (cols["camera"][1:] == cols["camera"][:-1])
        & (cols["video"][1:] == cols["video"][:-1])
    )
    gap = np.diff(cols["frame"])
    todo = np.flatnonzero(same & (gap > 1) & (gap <= cols["bridge"][:-1]))
    if len(todo) == 0:
        return cols
    counts = gap[todo] - 1
    lo = np.repeat(todo, counts)
    step = np.concatenate([np.arange(1, c + 1) for c in counts.tolist()])
    frac = step / np.repeat(gap[todo], counts)
    new: dict[str, np.ndarray] = {}
    for k, v in cols.items():
        new[k] = v[lo].copy()
    for k in ("x", "y", "scale", "rel"):
        new[k] = cols[k][lo] + frac * (cols[k][lo + 1] - cols[k][lo])
    new["box"] = cols["box"][lo] + frac[:, None] * (cols["box"][lo + 1] - cols["box"][lo])
    new["frame"] = cols["frame"][lo] + step
    new["frame_idx"] = cols["frame_idx"][lo] + step
    new["track"] = np.full(len(lo), -1, np.int64)
    new["conf"] = np.full(len(lo), -1.0)
    new["src"] = np.full(len(lo), -1, np.int64)
    return {k: np.concatenate([cols[k], new[k]]) for k in cols}


# --------------------------------------------------------------------------------- helpers


def _merged_intervals(
    tracks: Sequence[_TrackRow], reach: Mapping[int, timedelta], join: Mapping[int, timedelta]
) -> dict[int, list[tuple[datetime, datetime]]]:
    """Per camera, the union of the tracks' spans widened by ``reach``, as sorted intervals;
    spans less than ``join`` apart become one interval (the gap will be bridged)."""
    by_cam: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for t in tracks:
        by_cam[t.camera_id].append((t.start - reach[t.camera_id], t.end + reach[t.camera_id]))
    out: dict[int, list[tuple[datetime, datetime]]] = {}
    for cam, spans in by_cam.items():
        merged: list[tuple[datetime, datetime]] = []
        for s, e in sorted(spans):
            if merged and s <= merged[-1][1] + join[cam]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        out[cam] = merged
    return out


def _box(values: np.ndarray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


def _check_ids(values: Iterable[int]) -> list[int]:
    try:
        raw = list(values)
    except TypeError as err:
        raise ReidTraceError(
            f"subject track ids must be a list of integers, got {values!r}",
            hint="e.g. --track 12",
        ) from err
    ids = []
    for v in raw:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or int(v) < 1:
            raise ReidTraceError(
                f"a track id is a positive integer, got {v!r}", hint="e.g. --track 12"
            )
        ids.append(int(v))
    if not ids:
        raise ReidTraceError(
            "no subject track ids given", hint="give at least one, e.g. --track 12"
        )
    return sorted(set(ids))


def _check_positive(name: str, value: float, *, hint: str, zero_ok: bool = False) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value >= 0 if zero_ok else value > 0)
    )
    if not ok:
        what = ">= 0" if zero_ok else "> 0"
        raise ReidTraceError(f"contact {name} must be a number {what}, got {value!r}", hint=hint)


def _key_sort(key: PersonKey) -> tuple[int, int]:
    return (0 if key[0] == "p" else 1, key[1])


def _micros(t: datetime) -> int:
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_epoch(seconds: float) -> datetime:
    return _EPOCH + timedelta(microseconds=round(seconds * 1e6))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")
