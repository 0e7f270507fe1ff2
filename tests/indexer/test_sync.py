"""SQL is the source of truth: rebuild, verify and sync the FAISS cache against it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from indexer.index import FaissIndex, read_manifest, rebuild_index, sync_index, verify_index
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.models import Sighting, Video
from reid.errors import ReidTraceError
from tests.indexer.conftest import DIM, MODEL, FakeIngest, make_detections, make_sightings

FLAT = IndexSettings()


@pytest.fixture
def ingested(session: Session, video: Video, fake_ingest: FakeIngest) -> list[int]:
    return fake_ingest.run(session, video.id)


def test_rebuild_then_verify_is_clean(
    engine: Engine, session: Session, ingested: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "index.faiss"
    manifest = rebuild_index(engine, path, FLAT, MODEL)
    assert (manifest.count, manifest.dim, manifest.generation) == (6, DIM, 1)
    report = verify_index(engine, path)
    assert report.ok, report.problems()
    assert report.vectors_checked == 6 and report.exact
    assert report.index_generation == report.sql_generation == 1
    # search hits join straight to sighting rows
    _, vecs = repo.sighting_vectors(session=session, ids=ingested)
    hits = FaissIndex.load(path).search(vecs, 1)[1][:, 0]
    assert hits.tolist() == ingested


def test_verify_and_sync_heal_missing_and_stray_ids(
    engine: Engine, session: Session, video: Video, ingested: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "index.faiss"
    rebuild_index(engine, path, FLAT, MODEL)
    # SQL moves on without the index: a crash between the SQL commit and the index write ...
    more = repo.commit_chunk(
        session=session,
        video_id=video.id,
        frames_done=100,
        detections=make_detections({}),
        sightings=make_sightings([(3, 61), (3, 62)], seed=9),
    ).sighting_ids
    # ... and a rewind that deleted rows the index still holds
    gone = repo.delete_video_rows_after(session=session, video_id=video.id, frame=90).sighting_ids
    assert len(more) == 2 and len(gone) == 1
    report = verify_index(engine, path)
    assert not report.ok
    assert report.missing_ids == more and report.stray_ids == gone
    assert any("missing" in p for p in report.problems())

    out = sync_index(engine, path)
    assert (out.added, out.removed, out.rebuilt, out.saved) == (2, 1, False, True)
    assert out.generation == 2
    after = verify_index(engine, path)
    assert after.ok, after.problems()
    assert after.index_count == 7 and after.sql_generation == 2
    again = sync_index(engine, path)  # nothing to do: no new generation
    assert (again.added, again.removed, again.saved, again.generation) == (0, 0, False, 2)


def test_sync_replaces_vectors_that_differ(
    engine: Engine, session: Session, ingested: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "index.faiss"
    rebuild_index(engine, path, FLAT, MODEL)
    new = np.ones(DIM, np.float32) / np.sqrt(DIM)
    session.execute(
        update(Sighting).where(Sighting.id == ingested[2]).values(vector=repo.encode_vector(new))
    )
    session.commit()
    assert verify_index(engine, path).mismatched_ids == [ingested[2]]
    out = sync_index(engine, path)
    assert (out.added, out.removed) == (1, 1)
    np.testing.assert_allclose(FaissIndex.load(path).reconstruct([ingested[2]])[0], new)
    assert verify_index(engine, path).ok


def test_generation_behind_sql_is_reported(
    engine: Engine, session: Session, ingested: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "index.faiss"
    rebuild_index(engine, path, FLAT, MODEL)
    old = (path.read_bytes(), (tmp_path / "index.faiss.manifest.json").read_bytes())
    rebuild_index(engine, path, FLAT, MODEL)
    path.write_bytes(old[0])  # an old backup restored over the current index
    (tmp_path / "index.faiss.manifest.json").write_bytes(old[1])
    report = verify_index(engine, path)
    assert (report.index_generation, report.sql_generation) == (1, 2)
    assert not report.ok and "generation" in report.problems()[0]
    out = sync_index(engine, path)
    assert out.saved and out.generation == 3  # rewritten: a number is never seen twice
    assert verify_index(engine, path).ok and read_manifest(path).generation == 3


def test_an_index_written_after_its_state_is_recorded(
    engine: Engine, session: Session, ingested: list[int], tmp_path: Path
) -> None:
    """A crash between saving the index and recording it in SQL: sync records it."""
    path = tmp_path / "index.faiss"
    rebuild_index(engine, path, FLAT, MODEL)
    FaissIndex.load(path).save(path)  # generation 2, never recorded
    assert verify_index(engine, path).sql_generation == 1
    out = sync_index(engine, path)
    assert not out.saved and out.generation == 2
    assert verify_index(engine, path).ok


def test_sync_rebuilds_when_it_must_and_can(
    engine: Engine, ingested: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "index.faiss"
    with pytest.raises(ReidTraceError, match="cannot sync") as err:
        sync_index(engine, path)  # no file, no settings to build one
    assert "settings" in (err.value.hint or "")
    out = sync_index(engine, path, FLAT, MODEL)
    assert out.rebuilt and out.count == 6 and "no vector index" in (out.reason or "")
    ivf = IndexSettings(factory="IVF2,Flat", search_params="nprobe=2")
    out = sync_index(engine, path, ivf, MODEL)  # the factory changed in the settings
    assert out.rebuilt and "factory" in (out.reason or "")
    assert read_manifest(path).factory == "IVF2,Flat" and out.generation == 2
    assert verify_index(engine, path).ok
    hnsw = IndexSettings(factory="IDMap2,HNSW8")
    sync_index(engine, path, hnsw, MODEL)
    assert read_manifest(path).factory == "IDMap2,HNSW8"


@pytest.mark.parametrize(
    ("factory", "params"),
    [("IDMap2,HNSW8", ""), ("IDMap2,PCA4,HNSW8,RFlat", "efSearch=64,k_factor=4")],
)
def test_sync_rebuilds_an_index_that_cannot_remove(
    factory: str,
    params: str,
    engine: Engine,
    session: Session,
    video: Video,
    ingested: list[int],
    tmp_path: Path,
) -> None:
    path = tmp_path / "index.faiss"
    hnsw = IndexSettings(factory=factory, search_params=params)
    rebuild_index(engine, path, hnsw, MODEL)
    repo.delete_video_rows_after(session=session, video_id=video.id, frame=90)
    out = sync_index(engine, path, hnsw, MODEL)
    assert out.rebuilt and "cannot remove" in (out.reason or "") and out.count == 5
    assert (read_manifest(path).factory, read_manifest(path).search_params) == (factory, params)
    assert verify_index(engine, path).ok


def test_rebuild_needs_vectors_or_a_dimension(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "index.faiss"
    with pytest.raises(ReidTraceError, match="dimension is unknown"):
        rebuild_index(engine, path, FLAT, MODEL)
    assert rebuild_index(engine, path, FLAT, MODEL, dim=DIM).count == 0
    with pytest.raises(ReidTraceError, match="needs training vectors"):
        rebuild_index(engine, path, IndexSettings(factory="IVF2,Flat"), MODEL, dim=DIM)


def test_verify_reports_an_unreadable_index(engine: Engine, tmp_path: Path) -> None:
    report = verify_index(engine, tmp_path / "absent.faiss")
    assert not report.ok and "no vector index" in (report.error or "")
