"""Alembic: the packaged migrations build exactly the ORM schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from indexer.store import migrate, repo
from indexer.store.db import make_engine
from indexer.store.models import Base
from reid.errors import ReidTraceError
from tests.indexer.conftest import START, make_detections, make_sightings

ROOT = Path(__file__).resolve().parents[3]


def schema_diffs(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def test_sqlite_upgrade_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert migrate.current_revision(url) is None
    with pytest.raises(ReidTraceError, match="no reidtrace schema"):
        migrate.check_current(url)
    assert migrate.upgrade(url) == migrate.head_revision()
    assert migrate.check_current(url) == migrate.head_revision()
    engine = make_engine(url)
    assert schema_diffs(engine) == []
    assert migrate.upgrade(engine) == migrate.head_revision()  # again: nothing to do
    assert migrate.downgrade(engine, "base") is None
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_alembic_cli_with_the_deploy_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "deploy" / "alembic.ini"),
         "-x", f"url={url}", "upgrade", "head"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert migrate.current_revision(url) == migrate.head_revision()


def test_postgres_upgrade_matches_the_models_and_chunks_are_idempotent(pg_url: str) -> None:
    assert migrate.upgrade(pg_url) == migrate.head_revision()
    engine = make_engine(pg_url)
    try:
        assert schema_diffs(engine) == []
        with Session(engine, expire_on_commit=False) as session:
            cam = repo.get_or_create_camera(session=session, name="c", width=8, height=8, fps=5)
            video = repo.create_video(
                session=session,
                camera_id=cam.id,
                path="/v.mp4",
                content_hash="f" * 64,
                start_time=START,
                fps=5,
                num_frames=40,
                width=8,
                height=8,
            )
            dets = make_detections({1: range(0, 20), 2: range(5, 25)})
            sightings = make_sightings([(1, 3), (2, 20)])
            first = repo.commit_chunk(
                session=session,
                video_id=video.id,
                frames_done=30,
                detections=dets,
                sightings=sightings,
            )
            again = repo.commit_chunk(
                session=session,
                video_id=video.id,
                frames_done=30,
                detections=dets,
                sightings=sightings,
            )
            assert first.detections_inserted == 40 and len(first.sighting_ids) == 2
            assert again.detections_inserted == 0 and again.sighting_ids == []
            session.expunge_all()
            tracks = repo.tracks_for_video(session=session, video_id=video.id)
            assert [t.num_detections for t in tracks] == [20, 20]
            assert tracks[0].start_time == START and tracks[0].start_time.tzinfo is not None
            det = repo.detections_for_track(session=session, track_id=tracks[1].id)[-1]
            assert (det.frame_idx, det.time) == (24, START + timedelta(seconds=24 / 5))
            assert det.foot_x is None and det.x2 - det.x1 == pytest.approx(40)
            ids, vecs = next(repo.all_sighting_vectors(session=session))
            assert ids.tolist() == first.sighting_ids
            np.testing.assert_array_equal(vecs[0], sightings[0].vector)
    finally:
        engine.dispose()
