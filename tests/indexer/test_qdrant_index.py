"""The Qdrant ``VectorIndex`` backend: same top-10 as FAISS exact search, the sync protocol
(rebuild, verify, heal), the model check, and index URLs in settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from indexer.index import FaissIndex, rebuild_index, sync_index, verify_index
from indexer.index.bench_search import SyntheticSpec, synthetic_embeddings
from indexer.index.location import as_location, open_index
from indexer.index.manifest import IndexExpectation
from indexer.settings import IndexSettings, load_settings
from indexer.store import repo
from indexer.store.models import Video
from reid.errors import ReidTraceError
from tests.indexer.conftest import DIM, MODEL, FakeIngest, make_detections, make_sightings

qdrant = pytest.importorskip(
    "qdrant_client", reason="qdrant-client is not installed (pip install 'reidtrace[vectordb]')"
)
from indexer.index.qdrant_index import (  # noqa: E402 (after the skip)
    QdrantIndex,
    close_clients,
    parse_index_url,
)


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    yield
    close_clients()  # local mode locks its folder per client; in-memory ones hold the data


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True)) / truth.size


def test_same_top10_as_faiss_exact_search() -> None:
    """Backend parity on 3000 clustered vectors: recall@10 against FAISS Flat >= 0.99."""
    spec = SyntheticSpec(dim=64, rank=32, seed=3)
    gallery, queries = synthetic_embeddings(3000, 200, spec)
    ids = np.arange(100, 3100, dtype=np.int64)  # sighting ids do not start at 0
    exact = FaissIndex(64)
    exact.add(ids, gallery)
    index = QdrantIndex.create("qdrant://:memory:?collection=parity", dim=64, embedder=MODEL)
    index.add(ids, gallery)
    truth_scores, truth = exact.search(queries, 10)
    scores, found = index.search(queries, 10)
    assert _recall(found, truth) >= 0.99
    np.testing.assert_allclose(scores, truth_scores, atol=1e-4)  # the same inner products


def test_l2_scores_are_squared_distances_like_faiss() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    exact = FaissIndex(8, metric="l2")
    exact.add(np.arange(50), x)
    index = QdrantIndex.create("qdrant://:memory:?collection=l2", dim=8, metric="l2")
    index.add(np.arange(50), x)
    want_scores, want = exact.search(x[:5], 3)
    scores, got = index.search(x[:5], 3)
    assert got.tolist() == want.tolist()
    np.testing.assert_allclose(scores, want_scores, rtol=1e-4, atol=1e-4)


def test_ids_removal_reconstruction_and_padding() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    index = QdrantIndex.create("qdrant://:memory:?collection=ops", dim=8)
    index.add(np.array([7, 3, 9, 1, 4]), x)
    assert index.ids().tolist() == [1, 3, 4, 7, 9] and index.ntotal == 5
    with pytest.raises(ValueError, match="already in the index"):
        index.add(np.array([3]), x[:1])
    np.testing.assert_allclose(index.reconstruct([9]), x[2:3], atol=1e-6)
    assert index.remove_ids([3, 99]) == 1  # absent ids are ignored
    with pytest.raises(KeyError):
        index.reconstruct([3])
    scores, ids = index.search(x[:1], 6)  # 4 vectors left: the rest is padding, as in FAISS
    assert ids[0, 4:].tolist() == [-1, -1] and ids[0, 0] == 7
    assert np.all(scores[0, 4:] < -1e30)


def test_rebuild_verify_and_sync_on_a_local_qdrant_folder(
    engine: Engine, session: Session, video: Video, fake_ingest: FakeIngest, tmp_path: Path
) -> None:
    ingested = fake_ingest.run(session, video.id)
    url = f"qdrant://{tmp_path}/qdrant?collection=sightings"
    manifest = rebuild_index(engine, url, IndexSettings(), MODEL)
    assert (manifest.count, manifest.dim, manifest.generation, manifest.factory) == (
        6,
        DIM,
        1,
        "qdrant",
    )
    report = verify_index(engine, url, MODEL)
    assert report.ok, report.problems()
    _, vecs = repo.sighting_vectors(session=session, ids=ingested)
    assert open_index(url).search(vecs, 1)[1][:, 0].tolist() == ingested
    # SQL moves on: new sightings, and a rewind that deletes one the index holds
    more = repo.commit_chunk(
        session=session,
        video_id=video.id,
        frames_done=100,
        detections=make_detections({}),
        sightings=make_sightings([(3, 61), (3, 62)], seed=9),
    ).sighting_ids
    gone = repo.delete_video_rows_after(session=session, video_id=video.id, frame=90).sighting_ids
    report = verify_index(engine, url, MODEL)
    assert report.missing_ids == more and report.stray_ids == gone
    out = sync_index(engine, url, IndexSettings(), MODEL)
    assert (out.added, out.removed, out.rebuilt, out.generation) == (2, 1, False, 2)
    assert verify_index(engine, url, MODEL).ok


def test_another_models_collection_is_refused(
    engine: Engine, session: Session, video: Video, fake_ingest: FakeIngest, tmp_path: Path
) -> None:
    fake_ingest.run(session, video.id)
    url = f"qdrant://{tmp_path}/q"
    rebuild_index(engine, url, IndexSettings(), MODEL)
    with pytest.raises(ReidTraceError, match="vectors of two models are not comparable"):
        open_index(url, IndexExpectation(embedder="other-model-123"))
    report = verify_index(engine, url)  # without a model: checks against its own
    assert report.ok


def test_a_missing_collection_is_rebuilt_by_sync(
    engine: Engine, session: Session, video: Video, fake_ingest: FakeIngest, tmp_path: Path
) -> None:
    fake_ingest.run(session, video.id)
    url = f"qdrant://{tmp_path}/q?collection=fresh"
    out = sync_index(engine, url, IndexSettings(), MODEL)
    assert out.rebuilt and out.count == 6
    with pytest.raises(ReidTraceError, match="has no collection"):
        open_index(f"qdrant://{tmp_path}/q?collection=other")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("qdrant://", "names no folder"),
        ("qdrant+http:///coll", "names no server"),
        ("qdrant+http://user:secret@host/coll", "carries credentials"),
        ("qdrant:///tmp/x?collection=a/b", "collection name"),
    ],
)
def test_bad_index_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ReidTraceError, match=message):
        parse_index_url(url)


def test_index_urls_and_search_params() -> None:
    server = parse_index_url("qdrant+https://vectors.example:7000/sightings")
    assert dict(server.client_kwargs) == {"url": "https://vectors.example:7000"}
    assert server.collection == "sightings"
    local = parse_index_url("qdrant://./data/q")
    assert dict(local.client_kwargs) == {"path": "data/q"} and local.collection == "reidtrace"
    assert as_location("qdrant:///tmp/q") == "qdrant:///tmp/q"
    assert as_location("/tmp/index.faiss") == Path("/tmp/index.faiss")
    with pytest.raises(ReidTraceError, match="neither a file path nor a Qdrant URL"):
        as_location("milvus://host/c")
    with pytest.raises(ReidTraceError, match="does not fit a Qdrant index"):
        QdrantIndex.create("qdrant://:memory:", dim=8, search_params="nprobe=16")
    index = QdrantIndex.create("qdrant://:memory:", dim=8, search_params="hnsw_ef=64,exact=true")
    index.add(np.arange(3), np.eye(3, 8, dtype=np.float32))
    assert index.search(np.eye(1, 8, dtype=np.float32), 1)[1].tolist() == [[0]]


def test_settings_choose_the_backend_by_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path))
    assert load_settings().index_location == tmp_path / "index.faiss"  # default: FAISS file
    monkeypatch.setenv("REIDTRACE_INDEX_URL", "qdrant+http://localhost:6333/reid")
    assert load_settings().index_location == "qdrant+http://localhost:6333/reid"
    monkeypatch.setenv("REIDTRACE_INDEX_URL", "milvus://localhost")
    with pytest.raises(ReidTraceError, match="index_url"):
        load_settings()
