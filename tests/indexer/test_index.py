"""FaissIndex: ids, search, training, removal, atomic persistence and manifest checks."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

import indexer.index.faiss_index as index_module
from indexer.index import FaissIndex, IndexExpectation, create_index, manifest_path, read_manifest
from indexer.protocols import VectorIndex
from indexer.settings import IndexSettings
from reid.errors import ReidTraceError
from tests.indexer.conftest import DIM, MODEL, unit


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return np.arange(100, 400, dtype=np.int64), unit(rng, 300)


def flat(ids: np.ndarray, vecs: np.ndarray) -> FaissIndex:
    index = FaissIndex(DIM, factory="IDMap2,Flat", embedder=MODEL)
    index.add(ids, vecs)
    return index


def test_add_search_save_load_round_trip(tmp_path: Path, data: tuple) -> None:
    ids, vecs = data
    index = flat(ids, vecs)
    assert isinstance(index, VectorIndex) and len(index) == 300
    scores, hits = index.search(vecs[:5], k=3)
    assert hits.dtype == np.int64 and scores.dtype == np.float32
    assert hits[:, 0].tolist() == ids[:5].tolist()  # each vector finds itself first
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)  # ip of unit vectors = cosine
    _, few = index.search(vecs[:1], k=500)
    assert (few[0, 300:] == -1).all()

    path = tmp_path / "index.faiss"
    manifest = index.save(path)
    assert manifest.generation == 1 and manifest.count == 300 and manifest.dim == DIM
    assert json.loads(manifest_path(path).read_text())["embedder"] == MODEL
    loaded = FaissIndex.load(path, IndexExpectation(dim=DIM, metric="ip", embedder=MODEL))
    assert loaded.generation == 1 and loaded.ids().tolist() == ids.tolist()
    np.testing.assert_array_equal(loaded.search(vecs[:5], 3)[1], hits)
    np.testing.assert_array_equal(loaded.reconstruct(ids[[7, 3]]), vecs[[7, 3]])
    assert loaded.save(path).generation == 2


def test_duplicate_ids_and_bad_shapes_are_refused(data: tuple) -> None:
    ids, vecs = data
    index = flat(ids[:10], vecs[:10])
    with pytest.raises(ValueError, match="already in the index"):
        index.add(ids[5:12], vecs[5:12])
    with pytest.raises(ValueError, match="duplicate"):
        index.add(np.array([1, 1]), vecs[:2])
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        index.add(np.array([1]), np.ones((1, 4), np.float32))
    assert len(index) == 10


def test_remove_ids(data: tuple) -> None:
    ids, vecs = data
    index = flat(ids, vecs)
    assert index.remove_ids([*ids[:50].tolist(), 10**9]) == 50
    assert index.ids().tolist() == ids[50:].tolist()
    assert index.search(vecs[60:61], 1)[1][0, 0] == ids[60]


@pytest.mark.parametrize("factory", ["IVF4,Flat", "IDMap2,IVF4,Flat", "IDMap,IVF4,SQ8"])
def test_ivf_trains_refuses_untrained_add_and_removes_correctly(
    factory: str, data: tuple, tmp_path: Path
) -> None:
    ids, vecs = data
    index = FaissIndex(DIM, factory=factory, search_params="nprobe=4", embedder=MODEL)
    assert not index.is_trained
    with pytest.raises(ReidTraceError, match="not trained") as err:
        index.add(ids, vecs)
    assert "train" in (err.value.hint or "")
    index.train(vecs)
    index.add(ids, vecs)
    # FAISS's IDMap over an IVF returns wrong ids after remove_ids; ours must not
    index.remove_ids(ids[:100])
    assert index.ids().tolist() == ids[100:].tolist()
    hits = index.search(vecs[150:160], 1)[1][:, 0]
    assert hits.tolist() == ids[150:160].tolist()
    index.save(tmp_path / "ivf.faiss")
    loaded = FaissIndex.load(tmp_path / "ivf.faiss", search_params="nprobe=2")
    assert loaded.search_params == "nprobe=2" and loaded.ids().tolist() == ids[100:].tolist()
    assert loaded.reconstruct(ids[100:101]).shape == (1, DIM)


def test_too_few_training_vectors_is_a_user_error(data: tuple) -> None:
    index = FaissIndex(DIM, factory="IVF64,Flat")
    with pytest.raises(ReidTraceError, match="cannot train") as err:
        index.train(data[1][:10])
    assert "IVF" in (err.value.hint or "")


@pytest.mark.parametrize("factory", ["IDMap2,Bogus", "PQ3", ""])
def test_bad_factory_string(factory: str) -> None:
    with pytest.raises(ReidTraceError, match="FAISS cannot build") as err:
        FaissIndex(DIM, factory=factory)
    assert "IDMap2,Flat" in (err.value.hint or "")


def test_bad_metric_search_params_and_names() -> None:
    with pytest.raises(ReidTraceError, match="metric"):
        FaissIndex(DIM, metric="cosine")
    with pytest.raises(ReidTraceError, match="search_params") as err:
        FaissIndex(DIM, factory="Flat", search_params="nprobe=4")
    assert "nprobe" in (err.value.hint or "")
    with pytest.raises(ReidTraceError, match="unknown vector index"):
        create_index("annoy", dim=DIM)
    assert create_index("faiss", dim=DIM).dim == DIM
    assert FaissIndex.from_settings(IndexSettings(metric="l2"), dim=4, embedder="m").metric == "l2"


def test_flat_without_idmap_is_wrapped_and_hnsw_cannot_remove(data: tuple) -> None:
    ids, vecs = data
    index = FaissIndex(DIM, factory="Flat")  # FAISS's Flat alone takes no ids
    index.add(ids[:5], vecs[:5])
    assert index.search(vecs[:1], 1)[1][0, 0] == ids[0]
    hnsw = FaissIndex(DIM, factory="HNSW8", search_params="efSearch=32")
    hnsw.add(ids[:20], vecs[:20])
    assert not FaissIndex(DIM, factory="IVF4,PQ2").exact and hnsw.exact
    with pytest.raises(ReidTraceError, match="cannot remove"):
        hnsw.remove_ids(ids[:1])


def test_failed_save_leaves_the_old_index_intact(
    tmp_path: Path, data: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, vecs = data
    path = tmp_path / "index.faiss"
    flat(ids[:10], vecs[:10]).save(path)
    before = path.read_bytes(), manifest_path(path).read_bytes()

    def half_then_fail(index: faiss.Index, dest: Path) -> None:
        dest.write_bytes(b"partial index bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index_module, "_write_index_file", half_then_fail)
    with pytest.raises(ReidTraceError, match="No space left") as err:
        flat(ids, vecs).save(path)
    assert "unchanged" in (err.value.hint or "")
    assert (path.read_bytes(), manifest_path(path).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.faiss",
        "index.faiss.manifest.json",
    ]
    assert len(FaissIndex.load(path)) == 10


def test_manifest_mismatches_are_refused(tmp_path: Path, data: tuple) -> None:
    ids, vecs = data
    path = tmp_path / "index.faiss"
    flat(ids, vecs).save(path)
    for expect, word in [
        (IndexExpectation(dim=16), "dim"),
        (IndexExpectation(metric="l2"), "metric"),
        (IndexExpectation(embedder="other-model"), "embedder"),
        (IndexExpectation(factory="IVF4,Flat"), "factory"),
    ]:
        with pytest.raises(ReidTraceError, match=word) as err:
            FaissIndex.load(path, expect)
        assert "rebuild" in (err.value.hint or "")


def test_torn_or_missing_files_are_detected(tmp_path: Path, data: tuple) -> None:
    ids, vecs = data
    path = tmp_path / "index.faiss"
    with pytest.raises(ReidTraceError, match="no vector index") as err:
        FaissIndex.load(path)
    assert err.value.status == 404
    flat(ids[:10], vecs[:10]).save(path)
    good_manifest = manifest_path(path).read_bytes()
    flat(ids, vecs).save(path)
    manifest_path(path).write_bytes(good_manifest)  # crash between the two renames
    with pytest.raises(ReidTraceError, match="does not match its manifest"):
        FaissIndex.load(path)
    manifest_path(path).write_text("{not json")
    with pytest.raises(ReidTraceError, match="unreadable"):
        read_manifest(path)
    manifest_path(path).unlink()
    with pytest.raises(ReidTraceError, match="no manifest"):
        FaissIndex.load(path)


REFINED = "IDMap2,PCA32,HNSW16,RFlat"  # the shape recommended at ~1M (PCA256,HNSW32,RFlat)


def _clustered(n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """ReID-like unit vectors (a strong shared mean direction, rank 16 in 64-d)."""
    from indexer.index.bench_search import SyntheticSpec, synthetic_embeddings

    return synthetic_embeddings(n, queries, SyntheticSpec(dim=64, rank=16, views=6.0, seed=3))


def test_pca_hnsw_refined_index_gives_exact_top10_and_round_trips(tmp_path: Path) -> None:
    gallery, queries = _clustered(3000, 40)
    ids = np.arange(10_000, 13_000, dtype=np.int64)
    settings = IndexSettings(factory=REFINED, search_params="efSearch=128,k_factor=8")
    index = FaissIndex.from_settings(settings, dim=64, embedder=MODEL)
    assert not index.is_trained  # the PCA needs training
    index.train(gallery)
    index.add(ids, gallery)
    exact = FaissIndex(64)
    exact.add(ids, gallery)
    want_scores, want = exact.search(queries, 10)
    scores, got = index.search(queries, 10)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)  # re-ranked on full vectors
    assert index.exact  # reconstruct() returns the stored vectors, so sync compares exactly
    np.testing.assert_array_equal(index.reconstruct(ids[[5, 9]]), gallery[[5, 9]])
    with pytest.raises(ReidTraceError, match="cannot remove"):  # sync rebuilds it instead
        index.remove_ids(ids[:1])

    path = tmp_path / "index.faiss"
    index.save(path)
    manifest = read_manifest(path)
    assert (manifest.factory, manifest.search_params) == (REFINED, "efSearch=128,k_factor=8")
    loaded = FaissIndex.load(path)
    refine = faiss.downcast_index(faiss.downcast_index(loaded._index).index)
    hnsw = faiss.downcast_index(faiss.downcast_index(refine.base_index).index)
    assert (refine.k_factor, hnsw.hnsw.efSearch) == (8, 128)  # both knobs really set
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], want)
    loaded.set_search_params("efSearch=16,k_factor=1")
    assert (refine.k_factor, hnsw.hnsw.efSearch) == (1, 16)


def test_the_pca_keeps_inner_products_by_not_centring() -> None:
    """FAISS's PCA subtracts the mean, which reorders inner products of vectors sharing a mean
    direction; ours drops the shift. With more PCA axes than the data's rank, ours keeps the
    exact top-10 without any re-ranking; the centred PCA finds well under half of it."""
    gallery, queries = _clustered(3000, 40)
    ids = np.arange(3000, dtype=np.int64)
    exact = FaissIndex(64)
    exact.add(ids, gallery)
    want = exact.search(queries, 10)[1]

    def recall(found: np.ndarray) -> float:
        return float(
            np.mean([len(np.intersect1d(f, w)) / 10 for f, w in zip(found, want, strict=True)])
        )

    ours = FaissIndex(64, factory="IDMap2,PCA24,Flat")
    ours.train(gallery)
    ours.add(ids, gallery)
    centred = faiss.index_factory(64, "IDMap2,PCA24,Flat", faiss.METRIC_INNER_PRODUCT)
    centred.train(gallery)
    centred.add_with_ids(gallery, ids)
    ours_recall, centred_recall = (
        recall(ours.search(queries, 10)[1]),
        recall(centred.search(queries, 10)[1]),
    )
    assert ours_recall >= 0.99 and centred_recall < 0.6, (ours_recall, centred_recall)


@pytest.mark.parametrize(
    ("factory", "params", "match"),
    [
        (REFINED, "efSearch=lots", "not name=number"),
        (REFINED, "k_factor", "not name=number"),
        (REFINED, "efSearch=64,,k_factor=2", "not name=number"),
        (REFINED, "k_factor=-1", "not name=number"),
        ("IDMap2,HNSW16", "k_factor=4", "cannot apply"),  # no re-ranking to widen
        (REFINED, "nprobe=4", "cannot apply"),
    ],
)
def test_bad_search_params_say_which_knobs_fit(factory: str, params: str, match: str) -> None:
    with pytest.raises(ReidTraceError, match=match) as err:
        FaissIndex(64, factory=factory, search_params=params)
    assert "k_factor=4" in (err.value.hint or "") and "efSearch" in (err.value.hint or "")
    if factory == REFINED:
        index = FaissIndex(64, factory=REFINED, search_params="efSearch=32")
        with pytest.raises(ReidTraceError, match=match):
            index.set_search_params(params)
        assert index.search_params == "efSearch=32"  # a refused knob changes nothing
