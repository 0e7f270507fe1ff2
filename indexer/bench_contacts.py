"""The contacts query at archive scale: ``find_contacts`` over a synthetic store of 1M tracks.

Part of ``reidtrace bench search`` (issue 22: contacts over 1M tracks, p99 < 200 ms). The store
is synthesised straight into the tables with bulk ``INSERT ... executemany`` (SQLAlchemy Core,
no ORM objects; PostgreSQL through the same path), after the real schema is created by the
Alembic migrations, so the indexes are exactly the product's:

* ``cameras`` cameras with a ground homography (positions in metres), one long video each;
* ``n`` tracks spread evenly over the cameras, 10-50 s long, starting uniformly over the
  video's span, which is chosen so about ``concurrency`` people are in a camera at once (a busy
  corridor; the interval query's cost grows with it, not with ``n``);
* three detections per track (start, middle, end frame; the video runs at 0.2 fps, so each
  stands for 5 s) at random ground positions within a 20 m x 20 m area; about a third of the
  tracks walk beside the previous one (same frames, within ~1 m), so subjects have contacts
  (>= 5 s within 2 m) and the query does its whole job, not only the interval scan.

Then ``find_contacts`` is timed for random subjects (one track each, every track its own
person), one call at a time, as ``reidtrace trace`` runs it. A store with the same parameters
already at ``db_url`` is reused (the 1M-track insert takes minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from indexer.query.contacts import find_contacts
from indexer.store.db import make_engine
from indexer.store.migrate import upgrade
from indexer.store.models import Camera, Detection, Track, Video
from reid.errors import ReidTraceError

__all__ = [
    "CONTACT_ROW_KEYS",
    "bench_contacts",
    "contact_table",
    "postgres_bench_url",
    "synthesize_tracks",
]

CONTACT_ROW_KEYS = (
    "backend",
    "build_s",
    "cached",
    "contacts_mean",
    "database",
    "index",
    "meets_target",
    "n",
    "p50_ms",
    "p99_ms",
    "queries",
)
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
HOMOGRAPHY = [[0.02, 0.0, 0.0], [0.0, 0.02, 0.0], [0.0, 0.0, 1.0]]  # 50 px per metre
Progress = Callable[[str, int, int], None]


def _camera_name(i: int, n: int, seed: int) -> str:
    return f"bench-{n}-{seed}-cam{i:03d}"


def _existing(engine: Engine, n: int, cameras: int, seed: int) -> bool:
    with Session(engine) as session:
        name = _camera_name(cameras - 1, n, seed)
        if session.scalar(select(Camera.id).where(Camera.name == name)) is None:
            return False
        return session.scalar(select(func.count()).select_from(Track)) == n


def synthesize_tracks(
    engine: Engine,
    n: int,
    *,
    cameras: int = 20,
    concurrency: float = 10.0,
    seed: int = 0,
    batch: int = 50_000,
    progress: Progress | None = None,
) -> bool:
    """Fill an empty store at ``engine`` with ``n`` synthetic tracks (module doc); ``False``
    when a store of the same parameters is already there (reused), ``True`` when written."""
    if n < cameras or cameras < 1 or concurrency <= 0:
        raise ReidTraceError(
            f"need at least one track per camera: n={n}, cameras={cameras}",
            hint="e.g. 1000000 tracks over 20 cameras",
        )
    upgrade(engine)
    if _existing(engine, n, cameras, seed):
        return False
    with Session(engine) as session:
        if session.scalar(select(func.count()).select_from(Track)):
            raise ReidTraceError(
                "the bench database already holds other tracks",
                hint="point the contacts bench at an empty database (it creates its own)",
            )
    rng = np.random.default_rng(seed)
    per_cam = n // cameras
    fps, step = 0.2, 5  # one frame every 5 s
    mean_len = 30.0
    span = int(per_cam * mean_len / concurrency / step) + 12  # frames
    with engine.begin() as conn:
        cam_ids = []
        for i in range(cameras):
            cam_ids.append(
                conn.execute(
                    insert(Camera).returning(Camera.id),
                    {
                        "name": _camera_name(i, n, seed),
                        "width": 1280,
                        "height": 720,
                        "fps": fps,
                        "homography": HOMOGRAPHY,
                        "ground_units": "m",
                    },
                ).scalar_one()
            )
        vid_ids = [
            conn.execute(
                insert(Video).returning(Video.id),
                {
                    "camera_id": cid,
                    "path": f"/bench/{cid}.mp4",
                    "content_hash": f"{cid:064d}",
                    "start_time": START,
                    "fps": fps,
                    "num_frames": span,
                    "width": 1280,
                    "height": 720,
                    "status": "done",
                    "kind": "video",
                    "frames_done": span,
                },
            ).scalar_one()
            for cid in cam_ids
        ]
    done = 0
    track_id = 0
    for c, (cid, vid) in enumerate(zip(cam_ids, vid_ids, strict=True)):
        count = per_cam + (1 if c < n - per_cam * cameras else 0)
        starts = np.sort(rng.integers(0, span - 12, size=count))
        lengths = rng.integers(2, 11, size=count)  # 10-50 s
        feet_all = rng.uniform(0.0, 20.0, size=(count, 3, 2))
        beside = np.flatnonzero((np.arange(count) % 2 == 1) & (rng.random(count) < 0.7))
        starts[beside], lengths[beside] = starts[beside - 1], lengths[beside - 1]
        feet_all[beside] = feet_all[beside - 1] + rng.normal(0.0, 0.5, (len(beside), 3, 2))
        for lo in range(0, count, batch):
            hi = min(count, lo + batch)
            ids = np.arange(track_id + 1, track_id + 1 + hi - lo)
            track_id += hi - lo
            s, ln = starts[lo:hi], lengths[lo:hi]
            tracks = [
                {
                    "id": int(i),
                    "video_id": vid,
                    "camera_id": cid,
                    "track_no": int(i),
                    "start_frame": int(a),
                    "end_frame": int(a + b),
                    "start_time": START + timedelta(seconds=step * int(a)),
                    "end_time": START + timedelta(seconds=step * int(a + b)),
                    "num_detections": 3,
                    "embedding": None,
                }
                for i, a, b in zip(ids.tolist(), s.tolist(), ln.tolist(), strict=True)
            ]
            feet = feet_all[lo:hi]
            dets = []
            for row, (i, a, b) in enumerate(
                zip(ids.tolist(), s.tolist(), ln.tolist(), strict=True)
            ):
                for k, f in enumerate((a, a + b // 2, a + b)):
                    fx, fy = feet[row, k]
                    px, py = fx * 50.0, fy * 50.0  # the box stands on its foot point
                    dets.append(
                        {
                            "track_id": int(i),
                            "video_id": vid,
                            "frame_idx": int(f),
                            "time": START + timedelta(seconds=step * int(f)),
                            "x1": px - 20.0,
                            "y1": py - 100.0,
                            "x2": px + 20.0,
                            "y2": py,
                            "confidence": 0.9,
                            "foot_x": float(fx),
                            "foot_y": float(fy),
                        }
                    )
            with engine.begin() as conn:  # executemany: one statement, many parameter sets
                conn.execute(insert(Track), tracks)
                conn.execute(insert(Detection), dets)
            done += hi - lo
            if progress:
                progress(f"contacts store n={n}", done, n)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
            if track_id:
                conn.execute(text(f"SELECT setval('track_id_seq', {track_id})"))
    return True


def bench_contacts(
    db_url: str,
    n: int = 1_000_000,
    *,
    queries: int = 200,
    cameras: int = 20,
    concurrency: float = 10.0,
    seed: int = 0,
    target_p99_ms: float = 200.0,
    progress: Progress | None = None,
) -> dict:
    """One row (:data:`CONTACT_ROW_KEYS`): ``find_contacts`` p50/p99 over ``queries`` random
    subjects in a synthetic store of ``n`` tracks at ``db_url`` (created or reused)."""
    if queries < 1:
        raise ReidTraceError(f"queries must be >= 1, got {queries}", hint="e.g. 200")
    engine = make_engine(db_url)
    try:
        t0 = time.perf_counter()
        written = synthesize_tracks(
            engine, n, cameras=cameras, concurrency=concurrency, seed=seed, progress=progress
        )
        build_s = time.perf_counter() - t0
        subjects = np.random.default_rng(seed + 1).integers(1, n + 1, size=queries)
        lat = np.empty(queries)
        found = np.empty(queries)
        with Session(engine) as session:
            find_contacts(session, [int(subjects[0])], person_of={})  # warm-up
            for i, tid in enumerate(subjects.tolist()):
                t = time.perf_counter()
                out = find_contacts(session, [tid], person_of={})
                lat[i] = (time.perf_counter() - t) * 1000.0
                found[i] = len(out.rows)
                session.expire_all()
        p99 = float(np.percentile(lat, 99))
        return {
            "backend": "contacts",
            "build_s": round(build_s, 1) if written else None,
            "cached": not written,
            "contacts_mean": round(float(found.mean()), 2),
            "database": engine.dialect.name,
            "index": "find_contacts",
            "meets_target": p99 < target_p99_ms,
            "n": n,
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(p99, 2),
            "queries": queries,
        }
    finally:
        engine.dispose()


def postgres_bench_url(admin_url: str, name: str = "reidtrace_bench") -> str:
    """The URL of database ``name`` on the server of ``admin_url``, created when missing (the
    bench keeps it, like its other caches; ``DROP DATABASE reidtrace_bench`` removes it)."""
    if not name.replace("_", "").isalnum():
        raise ReidTraceError(f"bad database name {name!r}", hint="letters, digits and '_'")
    admin = make_engine(admin_url)  # refuses an unreachable server with a ReidTraceError
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        return admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        admin.dispose()


def contact_table(rows: Sequence[dict]) -> str:
    """The contacts rows as Markdown."""
    lines = [
        "| tracks | database | subjects | contacts per subject | p50 ms | p99 ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        mark = " ✓" if r["meets_target"] else ""
        lines.append(
            f"| {r['n']:,} | {r['database']}{mark} | {r['queries']} | {r['contacts_mean']} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        )
    return "\n".join(lines)
