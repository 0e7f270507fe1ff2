"""Store functions (after the FastAPI template's ``crud.py``): keyword-only ``session``, no HTTP.

The API routes, the CLI and the ingest pipeline call these; none of them builds SQL itself.
Functions that write commit their own transaction (one call = one unit of work), except the
building blocks that say otherwise.

Ingestion and crash safety
--------------------------
A video is written chunk by chunk with :func:`commit_chunk`, one transaction per chunk, which
also advances ``video.frames_done`` (the checkpoint). Re-running a chunk, or any part of one,
never duplicates anything, by three independent means:

1. every row has a natural key enforced by a unique constraint (``track(video_id, track_no)``,
   ``detection(video_id, track_id, frame_idx)``, ``sighting(detection_id)``);
2. rows are written with ``INSERT ... ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL), so rows
   that a crashed run already committed are skipped, keep their ids (a sighting's id is its
   FAISS id) and are reported as ``*_ignored``;
3. track aggregates (frames, times, counts, embedding) are recomputed from the stored rows, never
   incremented, so applying the same chunk twice gives the same values.

So after a crash the pipeline can simply redo the frames from ``frames_done``. To redo more
(e.g. tracks whose best crops were still in memory, see :func:`resume_state`), it rewinds with
:func:`delete_video_rows_after` (delete-then-reinsert). Rows removed from SQL may still be in
the FAISS index until ``indexer.index.sync_index`` runs: SQL is the source of truth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from indexer.store.models import (
    JOB_STATUSES,
    VIDEO_KINDS,
    VIDEO_STATUSES,
    Camera,
    Detection,
    IndexState,
    Job,
    Sighting,
    Track,
    Video,
    utcnow,
)
from indexer.store.schemas import (
    ChunkResult,
    DeletedRows,
    ResumeState,
    SightingCreate,
)
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.geometry import apply_homography, as_homography
from reid.vectors import l2_normalize

__all__ = [
    "all_sighting_vectors",
    "commit_chunk",
    "create_job",
    "create_video",
    "decode_vector",
    "delete_video",
    "delete_video_rows_after",
    "detections_for_track",
    "detections_for_video",
    "encode_vector",
    "find_video_by_hash",
    "get_camera",
    "get_camera_by_name",
    "get_index_state",
    "get_job",
    "get_or_create_camera",
    "get_video",
    "list_cameras",
    "list_jobs",
    "resume_state",
    "set_index_state",
    "set_video_status",
    "sighting_ids",
    "sighting_thumbnail",
    "sighting_vectors",
    "sightings_by_ids",
    "sightings_for_track",
    "track_embedding",
    "track_embedding_update",
    "tracks_for_camera",
    "tracks_for_video",
    "update_job",
    "video_checkpoint",
    "videos_for_camera",
]

IN_CHUNK = 900  # ids per IN (...) list: well under every SQLite build's variable limit
_F4 = np.dtype("<f4")  # vectors are stored little-endian float32 whatever the host


# --- vectors -------------------------------------------------------------------------------


def encode_vector(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes: the storage form of sighting vectors and track embeddings."""
    return np.ascontiguousarray(vector, dtype=_F4).tobytes()


def decode_vector(data: bytes) -> np.ndarray:
    """The float32 vector of :func:`encode_vector` (a read-only view is copied to be safe)."""
    return np.frombuffer(data, dtype=_F4).astype(np.float32)


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _insert_ignore(
    session: Session, model: type[Any], rows: list[dict[str, Any]], keys: list[str]
) -> list[Any]:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING id, ...keys``: the rows inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    cols = [model.id, *(getattr(model, k) for k in keys)]
    if dialect == "postgresql":
        return _pg_insert_ignore(session, model, rows, keys)
    if dialect != "sqlite":  # make_engine refuses other backends
        raise ValueError(f"no INSERT ... ON CONFLICT for dialect {dialect!r}")
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(model).on_conflict_do_nothing(index_elements=keys).returning(*cols)
    return list(session.execute(stmt, rows).all())


def _pg_insert_ignore(
    session: Session, model: type[Any], rows: list[dict[str, Any]], keys: list[str]
) -> list[Any]:
    """PostgreSQL: ``INSERT ... SELECT unnest(:col1), unnest(:col2) ...``, one array per column.

    One statement with a handful of array parameters instead of thousands of scalar ones:
    about five times faster than multi-row VALUES for the detection table.
    """
    from sqlalchemy.dialects.postgresql import ARRAY, insert

    table = model.__table__
    names = list(rows[0])
    arrays = [
        func.unnest(bindparam(f"a_{n}", [r[n] for r in rows], type_=ARRAY(table.c[n].type)))
        for n in names
    ]
    stmt = (
        insert(table)
        .from_select(names, select(*arrays))
        .on_conflict_do_nothing(index_elements=keys)
        .returning(table.c.id, *(table.c[k] for k in keys))
    )
    return list(session.execute(stmt).all())


# --- cameras -------------------------------------------------------------------------------


def get_or_create_camera(
    *,
    session: Session,
    name: str,
    width: int,
    height: int,
    fps: float,
    homography: Any = None,
    ground_units: str | None = None,
) -> Camera:
    """The camera called ``name``; created with these properties when it is new.

    An existing camera is returned unchanged: its stored homography keeps the meaning of the
    foot points already written.
    """
    found = get_camera_by_name(session=session, name=name)
    if found is not None:
        return found
    if not name or width <= 0 or height <= 0 or fps <= 0:
        raise ReidTraceError(
            f"bad camera {name!r}: width={width}, height={height}, fps={fps}",
            hint="a camera needs a name, a positive frame size and a positive frame rate",
        )
    if ground_units not in (None, "m"):
        raise ReidTraceError(
            f"camera {name!r}: ground_units must be 'm' or None, got {ground_units!r}",
            hint="homographies map image pixels to metres on the ground",
        )
    h = None if homography is None else as_homography(homography, name=f"camera {name} homography")
    camera = Camera(
        name=name,
        width=int(width),
        height=int(height),
        fps=float(fps),
        homography=None if h is None else h.tolist(),
        ground_units=ground_units,
    )
    session.add(camera)
    try:
        session.commit()
    except IntegrityError:  # another process created it between our SELECT and INSERT
        session.rollback()
        found = get_camera_by_name(session=session, name=name)
        if found is None:
            raise
        return found
    return camera


def get_camera_by_name(*, session: Session, name: str) -> Camera | None:
    return session.scalars(select(Camera).where(Camera.name == name)).one_or_none()


def get_camera(*, session: Session, camera_id: int) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise ReidTraceError(
            f"no camera with id {camera_id}", hint="list the cameras to see the ids", status=404
        )
    return camera


def list_cameras(*, session: Session) -> list[Camera]:
    return list(session.scalars(select(Camera).order_by(Camera.name)))


# --- videos --------------------------------------------------------------------------------


def find_video_by_hash(*, session: Session, camera_id: int, content_hash: str) -> Video | None:
    """The video with these bytes from this camera, if it was seen before (resume or skip)."""
    stmt = select(Video).where(Video.camera_id == camera_id, Video.content_hash == content_hash)
    return session.scalars(stmt).one_or_none()


def create_video(
    *,
    session: Session,
    camera_id: int,
    path: str,
    content_hash: str,
    start_time: datetime,
    fps: float,
    num_frames: int,
    width: int,
    height: int,
    kind: str = "video",
) -> Video:
    """A new ``pending`` video; the same file from the same camera twice is refused (409)."""
    if kind not in VIDEO_KINDS:
        raise ValueError(f"video kind must be one of {VIDEO_KINDS}, got {kind!r}")
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise ReidTraceError(
            f"video {path}: start time {start_time.isoformat()} has no time zone",
            hint="give it with a UTC offset, e.g. 2024-05-01T12:00:00Z",
        )
    if fps <= 0 or num_frames < 0 or width <= 0 or height <= 0:
        raise ReidTraceError(
            f"video {path}: bad fps={fps}, num_frames={num_frames} or size {width}x{height}",
            hint="check that the file decodes (a broken header gives zeros)",
        )
    get_camera(session=session, camera_id=camera_id)
    video = Video(
        camera_id=camera_id,
        path=str(path),
        content_hash=content_hash,
        start_time=start_time,
        fps=float(fps),
        num_frames=int(num_frames),
        width=int(width),
        height=int(height),
        status="pending",
        kind=kind,
        frames_done=0,
    )
    session.add(video)
    try:
        session.commit()
    except IntegrityError as err:
        session.rollback()
        old = find_video_by_hash(session=session, camera_id=camera_id, content_hash=content_hash)
        if old is None:
            raise
        raise ReidTraceError(
            f"{path} is already stored as video {old.id} ({old.path}, status {old.status})",
            hint="find_video_by_hash() first to resume or skip it; delete_video() to redo it",
            status=409,
        ) from err
    return video


def get_video(*, session: Session, video_id: int) -> Video:
    video = session.get(Video, video_id)
    if video is None:
        raise ReidTraceError(
            f"no video with id {video_id}", hint="list the videos to see the ids", status=404
        )
    return video


def set_video_status(
    *, session: Session, video_id: int, status: str, error: str | None = None
) -> Video:
    """Move a video to ``status`` ("pending", "running", "done", "failed"); commits."""
    if status not in VIDEO_STATUSES:
        raise ValueError(f"video status {status!r} is not one of {VIDEO_STATUSES}")
    video = get_video(session=session, video_id=video_id)
    video.status = status
    video.error = error
    session.commit()
    return video


def video_checkpoint(*, session: Session, video_id: int) -> tuple[int, bytes | None]:
    """``(frames_done, checkpoint)`` as committed together by the last ``commit_chunk``."""
    row = session.execute(
        select(Video.frames_done, Video.checkpoint).where(Video.id == video_id)
    ).one_or_none()
    if row is None:
        raise ReidTraceError(f"no video with id {video_id}", status=404)
    return int(row[0]), row[1]


def resume_state(*, session: Session, video_id: int) -> ResumeState:
    """Where an interrupted ingestion of ``video_id`` can continue (see :class:`ResumeState`)."""
    video = get_video(session=session, video_id=video_id)
    max_no = session.scalar(select(func.max(Track.track_no)).where(Track.video_id == video_id))
    has_sightings = select(Sighting.id).where(Sighting.track_id == Track.id).exists()
    unfinished = session.scalar(
        select(func.min(Track.start_frame)).where(Track.video_id == video_id, ~has_sightings)
    )
    return ResumeState(
        video_id=video_id,
        status=video.status,
        frames_done=video.frames_done,
        next_track_no=1 if max_no is None else int(max_no) + 1,
        unfinished_from=None if unfinished is None else int(unfinished),
    )


def _frame_times(video: Video, frames: np.ndarray) -> list[datetime]:
    """start + index / fps (ARCHITECTURE.md, *Time*), to the microsecond."""
    micros = np.rint(np.asarray(frames, np.float64) * (1e6 / video.fps)).astype(np.int64)
    return [video.start_time + timedelta(microseconds=int(m)) for m in micros]


def _lock_video(session: Session, video_id: int) -> Video:
    """Take the video's write lock first thing (row lock on PostgreSQL, the database write lock
    on SQLite, where ``busy_timeout`` then waits instead of failing) and return the row."""
    result = session.execute(
        update(Video).where(Video.id == video_id).values(updated_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        get_video(session=session, video_id=video_id)  # raises the 404
    video = session.get(Video, video_id, populate_existing=True)
    if video is None:  # pragma: no cover - the UPDATE just found it
        raise RuntimeError(f"video {video_id} vanished inside its own transaction")
    return video


def _refresh_tracks(session: Session, video: Video, track_ids: Iterable[int]) -> int:
    """Recompute frames, times and counts of ``track_ids`` from their detections; delete the
    tracks left without any. Returns the number deleted."""
    ids = sorted(set(track_ids))
    found: dict[int, tuple[int, int, int]] = {}
    for part in _chunks(ids):
        stmt = (
            select(
                Detection.track_id,
                func.min(Detection.frame_idx),
                func.max(Detection.frame_idx),
                func.count(),
            )
            .where(Detection.track_id.in_(part))
            .group_by(Detection.track_id)
        )
        for tid, lo, hi, n in session.execute(stmt):
            found[int(tid)] = (int(lo), int(hi), int(n))
    if found:
        tids = list(found)
        los = np.array([found[t][0] for t in tids])
        his = np.array([found[t][1] for t in tids])
        starts, ends = _frame_times(video, los), _frame_times(video, his)
        params = [
            {
                "id": t,
                "start_frame": int(lo),
                "end_frame": int(hi),
                "start_time": st,
                "end_time": et,
                "num_detections": found[t][2],
            }
            for t, lo, hi, st, et in zip(tids, los, his, starts, ends, strict=True)
        ]
        session.execute(update(Track), params)
    empty = [t for t in ids if t not in found]
    for part in _chunks(empty):
        session.execute(delete(Track).where(Track.id.in_(part)))
    return len(empty)


def _ensure_tracks(
    session: Session, video: Video, first_frames: dict[int, int]
) -> tuple[dict[int, int], int]:
    """``track_no -> track.id`` for these track numbers, creating the missing tracks (their
    aggregates are placeholders until :func:`_refresh_tracks`). Returns (ids, created)."""
    nos = sorted(first_frames)
    rows = []
    for no, t in zip(
        nos, _frame_times(video, np.array([first_frames[n] for n in nos])), strict=True
    ):
        frame = first_frames[no]
        rows.append(
            {
                "video_id": video.id,
                "camera_id": video.camera_id,
                "track_no": no,
                "start_frame": frame,
                "end_frame": frame,
                "start_time": t,
                "end_time": t,
                "num_detections": 0,
            }
        )
    created = _insert_ignore(session, Track, rows, ["video_id", "track_no"])
    ids: dict[int, int] = {}
    for part in _chunks(nos):
        stmt = select(Track.track_no, Track.id).where(
            Track.video_id == video.id, Track.track_no.in_(part)
        )
        ids.update({int(no): int(tid) for no, tid in session.execute(stmt)})
    return ids, len(created)


def _detection_rows(
    video: Video, camera: Camera, dets: Detections, track_ids: dict[int, int]
) -> list[dict[str, Any]]:
    foot: np.ndarray | None = None
    if camera.homography is not None and len(dets):
        foot = apply_homography(np.asarray(camera.homography), dets.foot)
    if dets.track_id is None:
        raise ValueError("detections need track_id")
    times = _frame_times(video, dets.frame_idx)
    boxes = dets.xyxy.tolist()
    conf = dets.confidence.tolist()
    rows = []
    for i, (frame, no) in enumerate(
        zip(dets.frame_idx.tolist(), dets.track_id.tolist(), strict=True)
    ):
        fx = fy = None
        if foot is not None and np.isfinite(foot[i]).all():
            fx, fy = float(foot[i, 0]), float(foot[i, 1])
        x1, y1, x2, y2 = boxes[i]
        rows.append(
            {
                "track_id": track_ids[no],
                "video_id": video.id,
                "frame_idx": frame,
                "time": times[i],
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "confidence": conf[i],
                "foot_x": fx,
                "foot_y": fy,
            }
        )
    return rows


def _check_dims(session: Session, sightings: Sequence[SightingCreate]) -> None:
    """One embedder, one dimension: a mismatch would poison the index (and rebuilds)."""
    dims: dict[str, int] = {}
    for s in sightings:
        if dims.setdefault(s.model, s.vector.size) != s.vector.size:
            raise ValueError(
                f"embedder {s.model!r} gave vectors of dims {dims[s.model]} and "
                f"{s.vector.size} in one chunk"
            )
    for model, dim in dims.items():
        stored = session.scalar(select(Sighting.dim).where(Sighting.model == model).limit(1))
        if stored is not None and stored != dim:
            raise ReidTraceError(
                f"embedder {model!r} now gives {dim}-d vectors but the store holds "
                f"{stored}-d vectors from an embedder of the same name",
                hint="give a changed model a new name (reid_model), or delete its old sightings",
            )


def commit_chunk(
    *,
    session: Session,
    video_id: int,
    frames_done: int,
    detections: Detections,
    sightings: Sequence[SightingCreate] = (),
    checkpoint: bytes | None = None,
) -> ChunkResult:
    """Write one chunk of a video in one transaction and advance its checkpoint; idempotent.

    ``detections``: the tracked boxes (``track_id`` = the tracker's number) produced since the
    last chunk, possibly for earlier frames too (a newly confirmed track's first boxes).
    ``sightings``: embedded crops whose detections are in this chunk or an earlier one.
    ``frames_done``: every frame before it is complete (no detection may be at or after it);
    the stored checkpoint only moves forward. Tracks are upserted by ``track_no`` and their
    span, times, counts and embedding recomputed from the rows. Rows already stored (a re-run
    after a crash) are skipped and counted as ignored. Foot points are mapped to the ground
    with the camera's homography when it has one. ``checkpoint``: opaque pipeline state as
    of ``frames_done`` (see ``video_checkpoint``), stored in the same transaction.
    """
    dets = detections
    if dets.track_id is None:
        if len(dets):
            raise ValueError("commit_chunk needs tracked detections (track_id filled)")
        dets = Detections.empty()
        dets.track_id = np.zeros(0, np.int64)
    if frames_done < 0:
        raise ValueError(f"frames_done must be >= 0, got {frames_done}")
    if len(dets) and (dets.frame_idx.min() < 0 or dets.frame_idx.max() >= frames_done):
        raise ValueError(
            f"detections span frames {dets.frame_idx.min()}..{dets.frame_idx.max()}, "
            f"outside the committed range [0, {frames_done})"
        )
    try:
        video = _lock_video(session, video_id)
        camera = video.camera  # the foreign key guarantees it
        _check_dims(session, sightings)

        first: dict[int, int] = {}
        for no, frame in zip(dets.track_id.tolist(), dets.frame_idx.tolist(), strict=True):
            first[no] = min(frame, first.get(no, frame))
        track_ids, created = _ensure_tracks(session, video, first) if first else ({}, 0)
        missing_nos = {s.track_no for s in sightings} - set(track_ids)
        if missing_nos:
            stmt = select(Track.track_no, Track.id).where(
                Track.video_id == video_id, Track.track_no.in_(sorted(missing_nos))
            )
            track_ids.update({int(no): int(tid) for no, tid in session.execute(stmt)})

        det_rows = _detection_rows(video, camera, dets, track_ids)
        inserted = 0
        for part in _chunks(det_rows, 5000):
            inserted += len(
                _insert_ignore(
                    session, Detection, list(part), ["video_id", "track_id", "frame_idx"]
                )
            )

        sighting_ids: list[int] = []
        if sightings:
            det_ids = _detection_ids(session, video_id, track_ids, sightings)
            rows = [
                {
                    "track_id": track_ids[s.track_no],
                    "detection_id": det_ids[(s.track_no, s.frame_idx)],
                    "vector": encode_vector(s.vector),
                    "dim": int(s.vector.size),
                    "model": s.model,
                    "thumbnail": s.thumbnail,
                    "quality": float(s.quality),
                }
                for s in sightings
            ]
            for part in _chunks(rows, 1000):
                got = _insert_ignore(session, Sighting, list(part), ["detection_id"])
                sighting_ids.extend(int(r[0]) for r in got)

        _refresh_tracks(session, video, {track_ids[no] for no in first})
        if sighting_ids:
            by_model: dict[str, set[int]] = defaultdict(set)
            for s in sightings:
                by_model[s.model].add(track_ids[s.track_no])
            for model, tids in by_model.items():
                track_embedding_update(session=session, track_ids=tids, model=model, commit=False)
        if frames_done >= video.frames_done and checkpoint is not None:
            video.checkpoint = checkpoint  # the pipeline state that goes with frames_done
        video.frames_done = max(video.frames_done, int(frames_done))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return ChunkResult(
        video_id=video_id,
        frames_done=video.frames_done,
        tracks_created=created,
        detections_inserted=inserted,
        detections_ignored=len(det_rows) - inserted,
        sighting_ids=sorted(sighting_ids),
        sightings_ignored=len(sightings) - len(sighting_ids),
    )


def _detection_ids(
    session: Session,
    video_id: int,
    track_ids: dict[int, int],
    sightings: Sequence[SightingCreate],
) -> dict[tuple[int, int], int]:
    """``(track_no, frame_idx) -> detection.id`` for the sightings' detections (any chunk)."""
    no_of = {tid: no for no, tid in track_ids.items()}
    wanted = {(s.track_no, s.frame_idx) for s in sightings}
    unknown = sorted(no for no, _ in wanted if no not in track_ids)
    if unknown:
        raise ValueError(f"sightings name track_no {unknown[:10]} with no stored detections")
    found: dict[tuple[int, int], int] = {}
    pairs = sorted(wanted)
    for part in _chunks(pairs, IN_CHUNK // 2):
        stmt = select(Detection.id, Detection.track_id, Detection.frame_idx).where(
            Detection.video_id == video_id,
            Detection.track_id.in_(sorted({track_ids[no] for no, _ in part})),
            Detection.frame_idx.in_(sorted({f for _, f in part})),
        )
        for did, tid, frame in session.execute(stmt):
            key = (no_of[int(tid)], int(frame))
            if key in wanted:
                found[key] = int(did)
    lost = sorted(wanted - set(found))
    if lost:
        raise ValueError(f"sightings at (track_no, frame_idx) {lost[:10]} have no detection")
    return found


def delete_video_rows_after(*, session: Session, video_id: int, frame: int) -> DeletedRows:
    """Delete the video's detections at frames >= ``frame`` and their sightings, trim or drop
    the tracks they belonged to, and move the checkpoint back to ``frame``; commits.

    Used to rewind a resumed ingestion (re-inserting those frames afterwards is then a plain
    insert). The returned sighting ids should leave the vector index (``sync_index`` heals it
    otherwise).
    """
    if frame < 0:
        raise ValueError(f"frame must be >= 0, got {frame}")
    try:
        video = _lock_video(session, video_id)
        after = (Detection.video_id == video_id) & (Detection.frame_idx >= frame)
        doomed = select(Detection.id).where(after)
        sids = [
            int(i)
            for i in session.scalars(
                select(Sighting.id).where(Sighting.detection_id.in_(doomed)).order_by(Sighting.id)
            )
        ]
        touched = [
            int(t) for t in session.scalars(select(Detection.track_id).where(after).distinct())
        ]
        for part in _chunks(sids):
            session.execute(delete(Sighting).where(Sighting.id.in_(part)))
        n_det = session.execute(delete(Detection).where(after)).rowcount  # type: ignore[attr-defined]
        n_tracks = _refresh_tracks(session, video, touched)
        remaining = session.scalars(select(Track.id).where(Track.id.in_(touched))).all()
        track_embedding_update(session=session, track_ids=remaining, commit=False)
        video.frames_done = min(video.frames_done, frame)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return DeletedRows(detections=int(n_det), tracks=n_tracks, sighting_ids=sids)


def delete_video(*, session: Session, video_id: int) -> DeletedRows:
    """Delete a video and everything ingested from it (database cascades); commits."""
    get_video(session=session, video_id=video_id)
    in_video = select(Track.id).where(Track.video_id == video_id)
    sids = [
        int(i)
        for i in session.scalars(
            select(Sighting.id).where(Sighting.track_id.in_(in_video)).order_by(Sighting.id)
        )
    ]
    count = select(func.count())
    n_det = session.scalar(count.select_from(Detection).where(Detection.video_id == video_id))
    n_tracks = session.scalar(count.select_from(Track).where(Track.video_id == video_id))
    session.execute(delete(Video).where(Video.id == video_id))
    session.commit()
    session.expunge_all()  # cascaded rows may linger in the identity map
    return DeletedRows(detections=int(n_det or 0), tracks=int(n_tracks or 0), sighting_ids=sids)


# --- tracks --------------------------------------------------------------------------------


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
    for part in _chunks(ids):
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


def videos_for_camera(*, session: Session, camera_id: int) -> list[Video]:
    return list(
        session.scalars(
            select(Video).where(Video.camera_id == camera_id).order_by(Video.start_time)
        )
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


def detections_for_track(*, session: Session, track_id: int) -> list[Detection]:
    """The track's boxes in frame order (trajectories, contacts, MOT export)."""
    stmt = select(Detection).where(Detection.track_id == track_id).order_by(Detection.frame_idx)
    return list(session.scalars(stmt))


# --- sightings -----------------------------------------------------------------------------


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
    for part in _chunks(wanted):
        out.update(
            {s.id: s for s in session.scalars(select(Sighting).where(Sighting.id.in_(part)))}
        )
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
    for part in _chunks(wanted):
        stmt = select(Sighting.id, Sighting.dim, Sighting.vector).where(Sighting.id.in_(part))
        rows.extend(session.execute(stmt).all())
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    rows.sort(key=lambda r: r[0])
    return _stack(rows)


# --- jobs ----------------------------------------------------------------------------------


def create_job(*, session: Session, kind: str, params: dict[str, Any] | None = None) -> Job:
    job = Job(kind=kind, status="pending", params=params or {}, progress={})
    session.add(job)
    session.commit()
    return job


def get_job(*, session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise ReidTraceError(f"no job with id {job_id}", hint="list the jobs", status=404)
    return job


def update_job(
    *,
    session: Session,
    job_id: int,
    status: str | None = None,
    progress: dict[str, Any] | None = None,
    error: str | None = None,
) -> Job:
    """Set what is given (``progress`` replaces the whole dict); commits."""
    if status is not None and status not in JOB_STATUSES:
        raise ValueError(f"job status {status!r} is not one of {JOB_STATUSES}")
    job = get_job(session=session, job_id=job_id)
    if status is not None:
        job.status = status
    if progress is not None:
        job.progress = dict(progress)
    if error is not None:
        job.error = error
    session.commit()
    return job


def list_jobs(
    *, session: Session, status: str | None = None, kind: str | None = None, limit: int = 100
) -> list[Job]:
    stmt = select(Job)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    return list(session.scalars(stmt.order_by(Job.id.desc()).limit(limit)))


# --- index state ---------------------------------------------------------------------------


def get_index_state(*, session: Session) -> IndexState | None:
    return session.get(IndexState, 1)


def set_index_state(
    *, session: Session, generation: int, count: int, embedder: str, path: str
) -> IndexState:
    """Record the FAISS generation just written (the single row, created on first use)."""
    state = session.get(IndexState, 1)
    if state is None:
        state = IndexState(id=1, generation=0, count=0, embedder="", path="")
        session.add(state)
    state.generation = int(generation)
    state.count = int(count)
    state.embedder = embedder
    state.path = str(path)
    session.commit()
    return state
