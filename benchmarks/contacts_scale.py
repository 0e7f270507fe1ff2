"""Contacts query latency on a large synthetic store (issue 22: 1M tracks, p99 < 200 ms).

Usage::

    python benchmarks/contacts_scale.py --tracks 100000 [--db sqlite:////tmp/c100k.db]
        [--cameras 20] [--fps 2] [--queries 200] [--json]
    python benchmarks/contacts_scale.py --tracks 1000000 --db postgresql://postgres@127.0.0.1/test

Builds the store once (migrated with Alembic, so it has exactly the production indexes; an
existing store with the same shape is reused): ``--cameras`` cameras, each recording
back-to-back 10-minute videos; track starts uniform over the recording, durations log-uniform
between 3 s and 3 min, so about 15 people are on screen at once whatever ``--tracks`` is (the
recording gets longer, not more crowded). Every track has one detection per frame at ``--fps``
(2 keeps a 1M-track store at ~60M rows; the engine reads a subject's frames only, so the cost
per query grows with fps and crowding, not with the store) walking in a 20 x 20 m square.
Then ``--queries`` random subject tracks (seeded) are traced with ``find_contacts`` after a
warm-up, and p50 / p99 / max latency printed (wall time, and this process's CPU time, which a
busy machine does not inflate; PostgreSQL's own work is only in the wall time), with the
query plan of the candidate query.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from indexer.query.contacts import find_contacts
from indexer.store import migrate
from indexer.store.db import make_engine
from indexer.store.models import Camera, Detection, Track, Video

START = datetime(2025, 1, 6, 8, 0, 0, tzinfo=UTC)
VIDEO_S = 600.0
CONCURRENT = 15  # people on screen per camera, on average
DUR_LO, DUR_HI = 3.0, 180.0


def mean_duration() -> float:
    """Mean of a log-uniform [DUR_LO, DUR_HI]."""
    return (DUR_HI - DUR_LO) / math.log(DUR_HI / DUR_LO)


def build(engine: Engine, n_tracks: int, n_cams: int, fps: float, seed: int) -> None:
    """Write the synthetic store (cameras, videos, tracks, detections) in bulk."""
    rng = np.random.default_rng(seed)
    per_cam = n_tracks // n_cams
    span = per_cam * mean_duration() / CONCURRENT
    n_videos = math.ceil(span / VIDEO_S)
    frames_per_video = int(VIDEO_S * fps)
    with engine.begin() as conn:
        conn.execute(
            insert(Camera),
            [
                {
                    "id": c + 1,
                    "name": f"cam{c + 1}",
                    "width": 1920,
                    "height": 1080,
                    "fps": fps,
                    "homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]],
                    "ground_units": "m",
                }
                for c in range(n_cams)
            ],
        )
        conn.execute(
            insert(Video),
            [
                {
                    "id": c * n_videos + v + 1,
                    "camera_id": c + 1,
                    "path": f"/cam{c + 1}/{v:05d}.mp4",
                    "content_hash": f"{c:08d}{v:08d}".ljust(64, "0"),
                    "start_time": START + timedelta(seconds=v * VIDEO_S),
                    "fps": fps,
                    "num_frames": frames_per_video,
                    "width": 1920,
                    "height": 1080,
                    "status": "done",
                    "kind": "video",
                    "frames_done": frames_per_video,
                    "created_at": START,
                    "updated_at": START,
                }
                for c in range(n_cams)
                for v in range(n_videos)
            ],
        )
    track_id = 0
    for c in range(n_cams):
        start_f = rng.integers(0, n_videos * frames_per_video - 1, per_cam)
        dur_f = np.exp(rng.uniform(math.log(DUR_LO), math.log(DUR_HI), per_cam)) * fps
        video = start_f // frames_per_video
        f0 = start_f % frames_per_video
        f1 = np.minimum(f0 + np.maximum(dur_f.astype(np.int64), 2), frames_per_video - 1)
        tracks, dets = [], []
        for i in range(per_cam):
            track_id += 1
            vid = c * n_videos + int(video[i]) + 1
            vstart = START + timedelta(seconds=float(video[i]) * VIDEO_S)
            a, b = int(f0[i]), int(f1[i])
            tracks.append(
                {
                    "id": track_id,
                    "video_id": vid,
                    "camera_id": c + 1,
                    "track_no": i + 1,
                    "start_frame": a,
                    "end_frame": b,
                    "start_time": vstart + timedelta(seconds=a / fps),
                    "end_time": vstart + timedelta(seconds=b / fps),
                    "num_detections": b - a + 1,
                }
            )
            n = b - a + 1
            steps = rng.normal(0, 0.6 / fps, (n, 2)).cumsum(axis=0)
            xy = np.clip(rng.uniform(0, 20, 2) + steps, 0, 20)
            px = xy * 100.0
            for k in range(n):
                dets.append(
                    {
                        "track_id": track_id,
                        "video_id": vid,
                        "frame_idx": a + k,
                        "time": vstart + timedelta(seconds=(a + k) / fps),
                        "x1": px[k, 0] - 40,
                        "y1": px[k, 1] - 170,
                        "x2": px[k, 0] + 40,
                        "y2": px[k, 1],
                        "confidence": 0.8,
                        "foot_x": xy[k, 0],
                        "foot_y": xy[k, 1],
                    }
                )
        with engine.begin() as conn:
            conn.execute(insert(Track), tracks)
            for lo in range(0, len(dets), 200_000):
                conn.execute(insert(Detection), dets[lo : lo + 200_000])
        print(f"camera {c + 1}/{n_cams}: {track_id} tracks", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--cameras", type=int, default=20)
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", default=None, help="default: sqlite:////tmp/contacts_<tracks>.db")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    url = args.db or f"sqlite:////tmp/contacts_{args.tracks}.db"
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        have = session.scalar(select(func.count()).select_from(Track)) or 0
    built_s = None
    if have == 0:
        t0 = time.perf_counter()
        build(engine, args.tracks, args.cameras, args.fps, args.seed)
        built_s = round(time.perf_counter() - t0, 1)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        else:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
    with Session(engine) as session:
        n_tracks = session.scalar(select(func.count()).select_from(Track)) or 0
        n_dets = session.scalar(select(func.count()).select_from(Detection)) or 0
        rng = np.random.default_rng(args.seed + 1)
        subjects = rng.integers(1, n_tracks + 1, args.queries).tolist()
        for tid in subjects[:20]:  # warm-up: a cold page cache measures the disk, not the query
            find_contacts(session, [tid], person_of={})
        times, cpu, found = [], [], []
        for tid in subjects:
            t0, c0 = time.perf_counter(), time.process_time()
            answer = find_contacts(session, [tid], person_of={})
            times.append(1000 * (time.perf_counter() - t0))
            cpu.append(1000 * (time.process_time() - c0))
            found.append(len(answer.rows))
        plan_sql = ("EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ") + (
            "SELECT id FROM track WHERE camera_id = 1 AND start_time >= '2025-01-06 09:00:00' "
            "AND start_time <= '2025-01-06 09:10:00' AND end_time >= '2025-01-06 09:09:00'"
        )
        plan = [" ".join(str(v) for v in row) for row in session.execute(text(plan_sql))]
    engine.dispose()
    out = {
        "backend": engine.dialect.name,
        "tracks": n_tracks,
        "detections": n_dets,
        "cameras": args.cameras,
        "fps": args.fps,
        "built_s": built_s,
        "queries": len(times),
        "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p99_ms": round(float(np.percentile(times, 99)), 1),
        "max_ms": round(max(times), 1),
        # CPU seconds of this process (SQLite runs in it): what the query costs on a machine
        # shared with other work, where wall time also counts waiting for a core
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 1),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 1),
        "load_avg_1min": round(os.getloadavg()[0], 1),
        "mean_contacts": round(float(np.mean(found)), 2),
        "candidate_plan": plan,
    }
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for k, v in out.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
