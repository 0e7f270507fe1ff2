"""Fixtures for the storage stage: in-memory SQLite with the ORM schema, a camera and a video,
and a seeded fake ingestion that writes tracks, detections and dimension-8 sightings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from indexer.store import repo
from indexer.store.db import make_engine
from indexer.store.models import Base, Camera, Video
from indexer.store.schemas import SightingCreate
from reid.detections import Detections
from reid.errors import ReidTraceError

DIM = 8
MODEL = "fake-embedder"
START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PG_ADMIN_URL = os.environ.get(
    "REIDTRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = make_engine("sqlite://")
    Base.metadata.create_all(eng)  # tests only: the app migrates with Alembic
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def camera(session: Session) -> Camera:
    return repo.get_or_create_camera(
        session=session,
        name="cam1",
        width=640,
        height=480,
        fps=10.0,
        homography=[[0.1, 0, 0], [0, 0.1, 0], [0, 0, 1]],  # 10 px = 1 m
        ground_units="m",
    )


@pytest.fixture
def video(session: Session, camera: Camera) -> Video:
    return repo.create_video(
        session=session,
        camera_id=camera.id,
        path="/videos/cam1.mp4",
        content_hash="ab" * 32,
        start_time=START,
        fps=10.0,
        num_frames=100,
        width=640,
        height=480,
    )


def make_detections(track_frames: dict[int, range], seed: int = 0) -> Detections:
    """One box per (track, frame); boxes drift with the frame so rows are distinguishable."""
    rng = np.random.default_rng(seed)
    rows = [(no, f) for no, frames in sorted(track_frames.items()) for f in frames]
    if not rows:
        return Detections.empty()
    nos = np.array([r[0] for r in rows], np.int64)
    frames = np.array([r[1] for r in rows], np.int64)
    x0 = 50.0 * nos + frames
    xyxy = np.stack([x0, np.full_like(x0, 100.0), x0 + 40, np.full_like(x0, 200.0)], axis=1)
    conf = rng.uniform(0.5, 1.0, len(rows))
    return Detections(xyxy=xyxy, confidence=conf, frame_idx=frames, track_id=nos)


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_sightings(
    picks: list[tuple[int, int]], seed: int = 0, model: str = MODEL
) -> list[SightingCreate]:
    """A sighting for each (track_no, frame_idx), with a seeded unit vector."""
    rng = np.random.default_rng(seed)
    return [
        SightingCreate(
            track_no=no,
            frame_idx=f,
            vector=unit(rng)[0],
            model=model,
            quality=0.5,
            thumbnail=b"\xff\xd8jpeg",
        )
        for no, f in picks
    ]


@dataclass
class FakeIngest:
    """Two chunks of 50 frames, 3 tracks (one crosses the chunk boundary), 2 sightings each."""

    chunks: list[tuple[int, Detections, list[SightingCreate]]]

    def run(self, session: Session, video_id: int) -> list[int]:
        ids: list[int] = []
        for frames_done, dets, sightings in self.chunks:
            out = repo.commit_chunk(
                session=session,
                video_id=video_id,
                frames_done=frames_done,
                detections=dets,
                sightings=sightings,
            )
            ids += out.sighting_ids
        return ids


@pytest.fixture
def fake_ingest() -> FakeIngest:
    chunk1 = make_detections({1: range(0, 30), 2: range(10, 50)}, seed=1)
    chunk2 = make_detections({2: range(50, 70), 3: range(60, 100)}, seed=2)
    return FakeIngest(
        chunks=[
            (50, chunk1, make_sightings([(1, 5), (1, 25)], seed=1)),
            (100, chunk2, make_sightings([(2, 15), (2, 65), (3, 70), (3, 90)], seed=2)),
        ]
    )


@pytest.fixture
def pg_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the server's ``postgres`` database (skips when unreachable)."""
    try:
        eng = make_engine(PG_ADMIN_URL)
    except ReidTraceError as err:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({err.message})")
    yield eng.execution_options(isolation_level="AUTOCOMMIT")
    eng.dispose()


@pytest.fixture
def pg_url(pg_admin: Engine) -> Iterator[str]:
    """A fresh, uniquely named scratch database, dropped afterwards."""
    name = f"reidtrace_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with pg_admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
