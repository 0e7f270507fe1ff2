"""``bench search``: the synthetic ReID embeddings, the row schema, and the quick CLI run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.bench_contacts import CONTACT_ROW_KEYS
from indexer.index.bench_search import (
    ROW_KEYS,
    IndexSpec,
    SyntheticSpec,
    _nlist,
    bench_search,
    default_specs,
    markdown_table,
    synthetic_embeddings,
)
from reid.errors import ReidTraceError
from reidtrace.cli import app

SMALL = SyntheticSpec(dim=64, rank=32, seed=1)


def test_synthetic_embeddings_look_like_reid_embeddings() -> None:
    """Unit rows; views of one identity closer than two identities, both in the measured
    range of the bundled model (0.66 and 0.40 on CUHK01); queries held out."""
    spec = SyntheticSpec(views=4.0)
    gallery, queries = synthetic_embeddings(2000, 50, spec)
    assert gallery.shape == (2000, 1280) and queries.shape == (50, 1280)
    assert gallery.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(gallery, axis=1), 1.0, atol=1e-5)
    # identities are reproducible: regenerate the labels the generator drew
    sims = gallery[:400] @ gallery[:400].T
    top = np.sort(sims, axis=1)[:, -2]  # nearest other vector
    assert 0.55 < float(np.median(top)) < 0.95  # a same-identity view, not noise
    off = sims[~np.eye(400, dtype=bool)]
    assert 0.3 < float(np.median(off)) < 0.5  # two people: the measured 0.40
    assert not np.isin(queries[:, 0], gallery[:, 0]).any()  # held out, not copies


def test_generated_vectors_are_cached(tmp_path: Path) -> None:
    a, qa = synthetic_embeddings(300, 10, SMALL, out=tmp_path)
    b, qb = synthetic_embeddings(300, 10, SMALL, out=tmp_path)
    assert isinstance(b, np.memmap) and np.array_equal(a, b) and np.array_equal(qa, qb)
    assert len(list(tmp_path.glob("gallery_*.npy"))) == 1


def test_rows_have_stable_keys_and_exact_search_is_the_truth(tmp_path: Path) -> None:
    def specs(n: int, dim: int) -> list[IndexSpec]:
        return [
            IndexSpec("exact (Flat)", "IDMap2,Flat"),
            IndexSpec("HNSW16", "IDMap2,HNSW16", "hnsw", "efSearch", (16, 64, 256)),
            IndexSpec("IVF16,Flat", "IVF16,Flat", "ivf", "nprobe", (1, 4, 16), 700),
            IndexSpec(
                "PCA32,HNSW16,RFlat",
                "IDMap2,PCA32,HNSW16,RFlat",
                "refine",
                "efSearch",
                (16, 64, 256),
                700,
                "k_factor",
                (1, 4),
                "efConstruction=60",
            ),
        ]

    rows = bench_search(
        [700],
        n_queries=40,
        latency_queries=20,
        exact_latency_queries=10,
        spec=SMALL,
        specs=specs,
        cache=tmp_path,
        threads=1,
    )
    names = ["exact (Flat)", "HNSW16", "IVF16,Flat", "PCA32,HNSW16,RFlat"]
    assert [r["index"] for r in rows] == names
    for r in rows:
        assert tuple(sorted(r)) == ROW_KEYS
        assert 0 <= r["p50_ms"] <= r["p99_ms"] and r["memory_mb"] > 0
    exact, hnsw, ivf, refine = rows
    assert exact["recall_at_10"] == 1.0 and exact["queries"] == 10
    # IVF with every list probed is exhaustive: the sweep must stop there at the latest
    assert ivf["recall_at_10"] >= 0.95 and ivf["search_params"].startswith("nprobe=")
    assert hnsw["recall_at_10"] >= 0.95
    # both knobs and the build knob in one settings string, as index.search_params takes it
    assert refine["recall_at_10"] >= 0.95
    assert re.fullmatch(r"efConstruction=60,efSearch=\d+,k_factor=[14]", refine["search_params"])
    assert len(list(tmp_path.glob("truth_*.npy"))) == 1  # exact results are cached too
    again = bench_search(
        [700], n_queries=40, latency_queries=20, spec=SMALL, specs=specs, cache=tmp_path, threads=1
    )
    assert all(r["cached"] for r in again) and [r["recall_at_10"] for r in again] == [
        r["recall_at_10"] for r in rows
    ]
    assert "| 700 | exact (Flat)" in markdown_table(rows)
    # a rerun that only queries: cached indexes are measured, the others skipped, none built
    more = [*specs(700, 64), IndexSpec("HNSW8", "IDMap2,HNSW8", "hnsw", "efSearch", (16,))]
    quiet = bench_search(
        [700],
        n_queries=40,
        latency_queries=20,
        spec=SMALL,
        specs=lambda n, d: more,
        cache=tmp_path,
        threads=1,
        build=False,
    )
    assert [r["index"] for r in quiet] == names and all(r["cached"] for r in quiet)
    with pytest.raises(ReidTraceError, match="no cached vectors"):
        bench_search([800], spec=SMALL, cache=tmp_path, build=False)
    with pytest.raises(ReidTraceError, match="--cache"):
        bench_search([700], spec=SMALL, build=False)


def test_the_qdrant_row_matches_faiss_exact() -> None:
    pytest.importorskip("qdrant_client", reason="qdrant-client is not installed")
    from indexer.index.bench_search import qdrant_row

    rows = bench_search(
        [1000],
        n_queries=50,
        latency_queries=10,
        spec=SMALL,
        specs=lambda n, d: [IndexSpec("exact (Flat)", "IDMap2,Flat")],
        extra_backends=(qdrant_row,),
        threads=1,
    )
    assert rows[-1]["backend"] == "qdrant (local)"
    assert rows[-1]["recall_at_10"] >= 0.99


def test_default_specs_follow_faiss_guidelines() -> None:
    assert _nlist(1_000_000) == 4096 and _nlist(100_000) == 1024
    assert _nlist(2000) * 39 <= 2000
    names = [s.factory for s in default_specs(1_000_000, 1280)]
    assert names == [
        "IDMap2,Flat",
        "IDMap2,HNSW32",
        "IVF4096,Flat",
        "IDMap2,PCA256,HNSW32,RFlat",
        "IVF4096,PQ160np",
    ]
    (refine,) = [s for s in default_specs(1_000_000, 1280) if s.kind == "refine"]
    assert refine.max_train == 100_000  # the PCA is trained
    sweep = refine.settings()
    assert len(sweep) == 3 and sweep[2][0] == "efConstruction=80,efSearch=16,k_factor=4"
    assert all(s.kind != "refine" for s in default_specs(1_000_000, 64))  # nothing to reduce
    assert all(s.max_train <= 1_000_000 for s in default_specs(1_000_000, 1280))
    # too few vectors to train PQ codebooks: no PQ row (FAISS would only warn)
    assert [s.kind for s in default_specs(2000, 1280)] == ["exact", "hnsw", "ivf", "refine"]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ReidTraceError, match=">= 100"):
        bench_search([10])
    with pytest.raises(ReidTraceError, match="unknown index kinds"):
        bench_search([1000], kinds=["annoy"])
    result = CliRunner().invoke(app, ["bench", "search", "--sizes", "1e6"])
    assert result.exit_code == 2


def test_quick_cli_run_prints_one_json_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path))
    args = ["bench", "search", "--quick", "--json", "--threads", "1", "--indexes", "ivf"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    vectors = [r for r in rows if r["backend"] != "contacts"]
    assert [r["index"] for r in vectors][:2] == ["exact (Flat)", "IVF32,Flat"]
    assert all(tuple(sorted(r)) == ROW_KEYS and r["n"] == 2000 for r in vectors)
    (contacts,) = [r for r in rows if r["backend"] == "contacts"]  # SQLite only when quick
    assert tuple(sorted(contacts)) == CONTACT_ROW_KEYS and contacts["database"] == "sqlite"


@pytest.mark.parametrize(
    ("factory", "params"),
    [("IDMap2,HNSW32", "efSearch=128"), ("IVF8,Flat", "nprobe=4"), ("IVF8,PQ4np", "nprobe=4")],
)
def test_the_benchmarked_factories_work_from_settings(
    factory: str, params: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the Scale table recommends is a setting: built from ``IndexSettings``, trained,
    filled under sighting ids, saved with its knob in the manifest and loaded with it."""
    import faiss

    from indexer.index import FaissIndex, read_manifest
    from indexer.settings import load_settings

    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path))
    monkeypatch.setenv("REIDTRACE_INDEX__FACTORY", factory)
    monkeypatch.setenv("REIDTRACE_INDEX__SEARCH_PARAMS", params)
    settings = load_settings().index
    gallery, queries = synthetic_embeddings(2000, 20, SMALL)
    index = FaissIndex.from_settings(settings, dim=64, embedder="m")
    index.train(gallery)
    ids = np.arange(5000, 7000, dtype=np.int64)
    index.add(ids, gallery)
    path = tmp_path / "index.faiss"
    index.save(path)
    assert (read_manifest(path).factory, read_manifest(path).search_params) == (factory, params)
    loaded = FaissIndex.load(path)
    knob, value = params.split("=")
    inner = faiss.downcast_index(loaded._index)
    if isinstance(inner, faiss.IndexIDMap):
        inner = faiss.downcast_index(inner.index)
    got = inner.hnsw.efSearch if knob == "efSearch" else faiss.extract_index_ivf(inner).nprobe
    assert got == int(value)  # the knob is really set on the loaded index
    found = loaded.search(queries, 10)[1]
    assert np.isin(found[found >= 0], ids).all()  # hits are sighting ids
