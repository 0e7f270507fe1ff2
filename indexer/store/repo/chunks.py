"""Chunk writes: one transaction per chunk of a video, idempotent, and the rewind that undoes them.

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
(e.g. tracks whose best crops were still in memory, see ``resume_state``), it rewinds with
:func:`delete_video_rows_after` (delete-then-reinsert), which lives here because it shares the
video lock and the track refresh with :func:`commit_chunk`. Rows removed from SQL may still be in
the FAISS index until ``indexer.index.sync_index`` runs: SQL is the source of truth.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from indexer.store.models import Camera, Detection, Sighting, Track, Video, utcnow
from indexer.store.repo.batches import IN_CHUNK, in_batches
from indexer.store.repo.sightings import encode_vector
from indexer.store.repo.tracks import track_embedding_update
from indexer.store.repo.videos import get_video
from indexer.store.schemas import ChunkResult, DeletedRows, SightingCreate
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.geometry import apply_homography

__all__ = ["commit_chunk", "delete_video_rows_after"]


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
    for part in in_batches(ids):
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
    for part in in_batches(empty):
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
    for part in in_batches(nos):
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


def _check_model(session: Session, sightings: Sequence[SightingCreate]) -> None:
    """One store, one model, one dimension, checked where every vector is written, so no path
    (the CLI, a worker, a direct ``ingest_video``) can mix two models' vectors: they live in
    different spaces, and a store of two would poison search, the index and its rebuilds."""
    dims: dict[str, int] = {}
    for s in sightings:
        if dims.setdefault(s.model, s.vector.size) != s.vector.size:
            raise ValueError(
                f"embedder {s.model!r} gave vectors of dims {dims[s.model]} and "
                f"{s.vector.size} in one chunk"
            )
    if len(dims) > 1:
        raise ValueError(f"one chunk holds vectors of several models: {sorted(dims)}")
    for model, dim in dims.items():
        # two seeks on the (model, id) index, however many rows the store holds
        other = session.scalar(select(Sighting.model).where(Sighting.model < model).limit(1))
        if other is None:
            other = session.scalar(select(Sighting.model).where(Sighting.model > model).limit(1))
        if other is not None:
            raise ReidTraceError(
                f"this store holds vectors of model {other!r}; refusing to add vectors of "
                f"model {model!r} (vectors of two models cannot be compared)",
                hint=f"ingest with the model the store was built with ({other}), or into a "
                "new database and index path, or re-embed the store with the new model first "
                "(`reidtrace reembed --model FILE.onnx`)",
            )
        stored = session.scalar(select(Sighting.dim).where(Sighting.model == model).limit(1))
        if stored is not None and stored != dim:
            raise ReidTraceError(
                f"model {model!r} now gives {dim}-d vectors but the store holds {stored}-d "
                "vectors of the same model id",
                hint="the store was written by another build of this model: ingest into a new "
                "database and index path",
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
        _check_model(session, sightings)

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
        for part in in_batches(det_rows, 5000):
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
            for part in in_batches(rows, 1000):
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
    for part in in_batches(pairs, IN_CHUNK // 2):
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


def delete_video_rows_after(
    *, session: Session, video_id: int, frame: int, drop_checkpoint: bool = False
) -> DeletedRows:
    """Delete the video's detections at frames >= ``frame`` and their sightings, trim or drop
    the tracks they belonged to, and move the checkpoint back to ``frame``; commits.

    Used to rewind a resumed ingestion (re-inserting those frames afterwards is then a plain
    insert). The returned sighting ids should leave the vector index (``sync_index`` heals it
    otherwise). ``drop_checkpoint`` also clears the saved pipeline state, in the same
    transaction. Rewinding below ``frames_done`` always drops it: the saved state belongs to
    the old ``frames_done``, and resuming from it at ``frame`` would replay the tracker's later
    memory onto earlier frames (a resume then finds no state and starts the video over).
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
        for part in in_batches(sids):
            session.execute(delete(Sighting).where(Sighting.id.in_(part)))
        n_det = session.execute(delete(Detection).where(after)).rowcount  # type: ignore[attr-defined]
        n_tracks = _refresh_tracks(session, video, touched)
        remaining = session.scalars(select(Track.id).where(Track.id.in_(touched))).all()
        track_embedding_update(session=session, track_ids=remaining, commit=False)
        if drop_checkpoint or frame < video.frames_done:
            video.checkpoint = None
        video.frames_done = min(video.frames_done, frame)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return DeletedRows(detections=int(n_det), tracks=n_tracks, sighting_ids=sids)
