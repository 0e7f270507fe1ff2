"""``SqlStore``, the ``Store`` ingestion writes through: open, write chunks, restart, close."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from indexer.protocols import Store
from indexer.store import repo
from indexer.store.models import Base, Camera, Detection, Sighting, Track, Video
from indexer.store.schemas import ChunkResult, VideoSpec
from indexer.store.sql import SqlStore
from reid.detections import Detections
from reid.errors import ReidTraceError
from tests.indexer.conftest import START, FakeIngest

SPEC = VideoSpec(  # the conftest's camera and video, as ingestion would describe them
    camera="cam1",
    width=640,
    height=480,
    fps=10.0,
    homography=np.diag([0.1, 0.1, 1.0]),  # 10 px = 1 m
    ground_units="m",
    path="/videos/cam1.mp4",
    content_hash="ab" * 32,
    start_time=START,
    num_frames=100,
    kind="video",
)


@pytest.fixture
def store(engine: Engine) -> SqlStore:
    return SqlStore(engine)


def write_all(
    store: Store, video_id: int, fake_ingest: FakeIngest, *, checkpoints: bool = True
) -> list[ChunkResult]:
    """The fake ingestion's chunks, each with its frames_done as the checkpoint (or none)."""
    return [
        store.write_chunk(
            video_id,
            dets,
            frames_done=frames_done,
            sightings=sightings,
            checkpoint=f"state@{frames_done}".encode() if checkpoints else None,
        )
        for frames_done, dets, sightings in fake_ingest.chunks
    ]


def row_counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        return tuple(len(s.scalars(select(m.id)).all()) for m in (Track, Detection, Sighting))


def test_sql_store_is_a_store(store: SqlStore) -> None:
    assert isinstance(store, Store)

    class WriteOnly:  # the old protocol's only call is no longer enough
        def write(self, video_id: int, detections: Detections) -> None: ...

    assert not isinstance(WriteOnly(), Store)


def test_opening_a_new_video_creates_camera_and_video(store: SqlStore, engine: Engine) -> None:
    opened = store.open_video(SPEC)
    assert (opened.status, opened.frames_done, opened.checkpoint) == ("new", 0, None)
    with Session(engine) as s:
        video = s.get(Video, opened.video_id)
        camera = s.get(Camera, opened.camera_id)
        assert video is not None and camera is not None
        assert (video.status, video.camera_id, video.kind) == ("running", camera.id, "video")
        assert (video.path, video.num_frames, video.start_time) == (SPEC.path, 100, START)
        assert (camera.name, camera.ground_units) == ("cam1", "m")
        assert camera.homography[0][0] == pytest.approx(0.1)


def test_opening_the_same_file_twice_returns_the_same_video(store: SqlStore) -> None:
    first = store.open_video(SPEC)
    moved = replace(SPEC, path="/elsewhere/renamed.mp4", width=1, height=1)  # same bytes
    again = store.open_video(moved)
    assert (again.video_id, again.camera_id) == (first.video_id, first.camera_id)
    assert again.status == "running"  # the stored status: the first run never closed it
    other = store.open_video(replace(SPEC, content_hash="0e" * 32))
    assert other.video_id != first.video_id and other.status == "new"


def test_a_done_video_is_reported_done_and_left_done(
    store: SqlStore, engine: Engine, fake_ingest: FakeIngest
) -> None:
    opened = store.open_video(SPEC)
    write_all(store, opened.video_id, fake_ingest)
    assert store.close_video(opened.video_id, "done") == 3
    again = store.open_video(SPEC)
    assert (again.status, again.frames_done, again.checkpoint) == ("done", 100, b"state@100")
    with Session(engine) as s:
        assert s.get(Video, opened.video_id).status == "done"  # not set running again


def test_a_failed_video_reopens_with_its_checkpoint(
    store: SqlStore, engine: Engine, fake_ingest: FakeIngest
) -> None:
    opened = store.open_video(SPEC)
    frames_done, dets, sightings = fake_ingest.chunks[0]
    store.write_chunk(
        opened.video_id, dets, frames_done=frames_done, sightings=sightings, checkpoint=b"s1"
    )
    assert store.close_video(opened.video_id, "failed", error="decoder crashed") == 2
    with Session(engine) as s:
        video = s.get(Video, opened.video_id)
        assert (video.status, video.error) == ("failed", "decoder crashed")
    again = store.open_video(SPEC)
    assert (again.status, again.frames_done, again.checkpoint) == ("failed", 50, b"s1")
    with Session(engine) as s:
        video = s.get(Video, opened.video_id)
        assert (video.status, video.error) == ("running", None)


def test_writing_a_chunk_twice_changes_nothing(
    store: SqlStore, engine: Engine, fake_ingest: FakeIngest
) -> None:
    video_id = store.open_video(SPEC).video_id
    first = write_all(store, video_id, fake_ingest)
    assert [len(r.sighting_ids) for r in first] == [2, 4]
    assert first[-1].detections_inserted == 60 and first[-1].frames_done == 100
    before = row_counts(engine)
    again = write_all(store, video_id, fake_ingest)
    for (_, dets, sightings), out in zip(fake_ingest.chunks, again, strict=True):
        assert out.detections_inserted == 0 and out.detections_ignored == len(dets)
        assert out.sighting_ids == [] and out.sightings_ignored == len(sightings)
        assert out.tracks_created == 0
    assert row_counts(engine) == before == (3, 130, 6)


def test_restart_drops_rows_and_checkpoint(
    store: SqlStore, engine: Engine, fake_ingest: FakeIngest
) -> None:
    video_id = store.open_video(SPEC).video_id
    write_all(store, video_id, fake_ingest)
    assert store.restart_video(video_id) is None
    assert row_counts(engine) == (0, 0, 0)
    again = store.open_video(SPEC)
    assert (again.video_id, again.frames_done, again.checkpoint) == (video_id, 0, None)
    assert [len(r.sighting_ids) for r in write_all(store, video_id, fake_ingest)] == [2, 4]
    with pytest.raises(ReidTraceError) as err:
        store.restart_video(424242)
    assert err.value.status == 404


def test_close_video_validates_its_input(store: SqlStore, engine: Engine) -> None:
    video_id = store.open_video(SPEC).video_id
    for status in ("running", "pending", "ok"):
        with pytest.raises(ReidTraceError, match="cannot close"):
            store.close_video(video_id, status)
    with pytest.raises(ReidTraceError, match="with an error"):
        store.close_video(video_id, "done", error="boom")
    with pytest.raises(ReidTraceError) as err:
        store.close_video(424242, "done")
    assert err.value.status == 404
    with Session(engine) as s:
        assert s.get(Video, video_id).status == "running"  # every refusal left it alone
    assert store.close_video(video_id, "done") == 0


def test_bad_specs_and_unknown_videos_are_refused(store: SqlStore) -> None:
    with pytest.raises(ReidTraceError, match="kind"):
        replace(SPEC, kind="movie")
    with pytest.raises(ReidTraceError, match="content hash"):
        replace(SPEC, content_hash="")
    with pytest.raises(ReidTraceError, match="positive"):
        store.open_video(replace(SPEC, camera="new-cam", fps=0))
    with pytest.raises(ReidTraceError, match="time zone"):
        store.open_video(replace(SPEC, start_time=datetime(2024, 5, 1)))
    with pytest.raises(ReidTraceError) as err:
        store.write_chunk(424242, Detections.empty(), frames_done=1, checkpoint=None)
    assert err.value.status == 404


def test_from_url_owns_and_disposes_its_engine(tmp_path: Path, fake_ingest: FakeIngest) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with SqlStore.from_url(url) as store:
        Base.metadata.create_all(store.engine)  # tests only: the app migrates with Alembic
        video_id = store.open_video(SPEC).video_id
        write_all(store, video_id, fake_ingest)
        assert store.engine.pool.checkedin() >= 1  # pooled connections stay open while in use
    assert store.engine.pool.checkedin() == 0  # disposed on leaving the block
    with SqlStore.from_url(url) as again:
        assert again.open_video(SPEC).frames_done == 100


def test_a_borrowed_engine_stays_open(engine: Engine) -> None:
    with SqlStore(engine) as store:
        video_id = store.open_video(SPEC).video_id
    with Session(engine) as s:  # an in-memory database would be gone with a disposed engine
        assert s.get(Video, video_id) is not None


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value of the ingest tables, in id order (bookkeeping times left out)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with Session(engine) as s:
        for model in (Camera, Video, Track, Detection, Sighting):
            cols = [c for c in model.__table__.c if c.name not in ("created_at", "updated_at")]
            out[model.__tablename__] = [tuple(r) for r in s.execute(select(*cols).order_by("id"))]
    return out


def test_the_store_writes_what_the_repo_calls_wrote(
    session: Session, engine: Engine, video: Video, fake_ingest: FakeIngest
) -> None:
    """Today's pipeline through the repo (the ``camera`` and ``video`` fixtures are its
    get-or-create calls, with SPEC's values): running, the chunks, a restart, the first chunk
    again, done. The store must leave the very same rows."""
    first = FakeIngest(chunks=fake_ingest.chunks[:1])
    repo.set_video_status(session=session, video_id=video.id, status="running")
    fake_ingest.run(session, video.id)
    repo.delete_video_rows_after(session=session, video_id=video.id, frame=0)
    first.run(session, video.id)
    repo.set_video_status(session=session, video_id=video.id, status="done")
    tracks = len(repo.tracks_for_video(session=session, video_id=video.id))

    with SqlStore.from_url("sqlite://") as store:
        Base.metadata.create_all(store.engine)
        video_id = store.open_video(SPEC).video_id
        write_all(store, video_id, fake_ingest, checkpoints=False)
        store.restart_video(video_id)
        write_all(store, video_id, first, checkpoints=False)
        assert store.close_video(video_id, "done") == tracks == 2
        stored = dump(store.engine)
    assert stored["detection"] and stored["sighting"]
    assert stored == dump(engine)
