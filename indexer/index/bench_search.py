"""``reidtrace bench search``: exact vs approximate vector search on synthetic ReID embeddings.

**Why synthetic, and why this shape.** A 1M-vector benchmark needs 1M embeddings; we have a few
thousand real ones. Uniform noise on the sphere is the wrong stand-in: in 1280 dimensions every
pair of such vectors is nearly orthogonal, the "nearest" neighbours are barely nearer than the
rest, and ANN recall looks far worse (and exact search far more necessary) than on real data;
tight isolated clusters err the other way. So the generator copies the statistics of real
embeddings of the bundled model (``mobilenetv2_x1_0``, 1280-d) measured on 1600 CUHK01 crops
(``../shared/data/real_reid/cuhk01``): a common mean direction (norm of the mean embedding 0.64),
a low-rank spread with a power-law spectrum (half the centred variance in ~15 directions, 90%
in ~110), identities that each own a centre in that subspace and views scattered around it
(cosine between two views of one person 0.66 on average, between two people 0.40, both as
measured), L2-normalised. Measured on the generator: 0.67 / 0.40, mean norm 0.63, 50% / 90% of
the variance in 13 / 124 directions. Each gallery vector belongs to a random identity (about
``views`` per identity, Poisson), and every query is a fresh view of a gallery identity that is
not in the gallery (held out), as a user's photo of someone the cameras saw.

**What is measured.** For each index: recall@10 against exact search (the share of the exact
top-10 ids found in the approximate top-10, over all queries), the search knob (``nprobe`` /
``efSearch``) chosen as the smallest of a sweep that reaches recall@10 >= ``target_recall``,
p50/p99 latency of single queries on one thread (as one user's search runs) at that knob, the
index's serialised size (= its memory), and its build time (train + add). Indexes are built with
:class:`FaissIndex` from the same factory strings ``IndexSettings.factory`` takes, so every row
is a setting the product can use. With ``cache``, generated vectors and built indexes are kept
there and reused (a 1M-vector index takes minutes to build).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexer.index.faiss_index import FaissIndex
from reid.errors import ReidTraceError

__all__ = [
    "KINDS",
    "ROW_KEYS",
    "IndexSpec",
    "SyntheticSpec",
    "bench_search",
    "default_specs",
    "markdown_table",
    "qdrant_row",
    "synthetic_embeddings",
]

GENERATOR_VERSION = 1  # bump when the generator changes, so cached vectors are not reused
ROW_KEYS = (
    "backend",
    "build_s",
    "cached",
    "dim",
    "factory",
    "index",
    "meets_target",
    "memory_mb",
    "n",
    "p50_ms",
    "p99_ms",
    "queries",
    "recall_at_10",
    "search_params",
)
Progress = Callable[[str, int, int], None]


# --- synthetic embeddings ------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSpec:
    """The generator's knobs; the defaults reproduce the bundled model's statistics (above)."""

    dim: int = 1280
    rank: int = 256  # directions the identities and views vary in
    alpha: float = 1.0  # variance of the i-th direction ~ i^-alpha
    identity_share: float = 0.45  # share of the in-subspace variance that is the identity's
    mean_scale: float = 0.8  # length of the common mean direction before normalisation
    noise: float = 0.05  # isotropic noise outside the subspace (total length)
    views: float = 8.0  # gallery vectors per identity, on average
    seed: int = 0

    def key(self, n: int, n_queries: int) -> str:
        return (
            f"v{GENERATOR_VERSION}_n{n}_q{n_queries}_d{self.dim}_r{self.rank}_a{self.alpha}"
            f"_i{self.identity_share}_m{self.mean_scale}_e{self.noise}_w{self.views}_s{self.seed}"
        )


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def synthetic_embeddings(
    n: int,
    n_queries: int,
    spec: SyntheticSpec = SyntheticSpec(),
    *,
    out: Path | None = None,
    chunk: int = 50_000,
) -> tuple[np.ndarray, np.ndarray]:
    """``(gallery (n, dim), queries (n_queries, dim))`` float32 unit rows (see the module doc).

    With ``out`` (a folder) the gallery is written to a ``.npy`` there and returned memory-mapped,
    so 1M x 1280 floats (5 GB) need not fit in memory twice; an existing file is reused.
    """
    if n < 1 or n_queries < 1:
        raise ReidTraceError(
            f"need at least one gallery vector and one query, got n={n}, queries={n_queries}"
        )
    if spec.dim < 2 or not 1 <= spec.rank <= spec.dim:
        raise ReidTraceError(f"bad generator spec: dim={spec.dim}, rank={spec.rank}")
    paths = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        key = spec.key(n, n_queries)
        paths = (out / f"gallery_{key}.npy", out / f"queries_{key}.npy")
        if paths[0].is_file() and paths[1].is_file():
            return np.load(paths[0], mmap_mode="r"), np.load(paths[1])
    rng = np.random.default_rng(spec.seed)
    basis, _ = np.linalg.qr(rng.standard_normal((spec.dim, spec.rank)))
    scale = np.arange(1, spec.rank + 1, dtype=np.float64) ** (-spec.alpha / 2)
    scale /= np.sqrt((scale**2).sum())
    lift = (basis * scale).T.astype(np.float32)  # (rank, dim): latent -> embedding space
    mean = rng.standard_normal(spec.dim)
    mean = (spec.mean_scale * mean / np.linalg.norm(mean)).astype(np.float32)
    n_ids = max(1, round(n / spec.views))
    centres = rng.standard_normal((n_ids, spec.rank), dtype=np.float32)
    centres *= np.float32(math.sqrt(spec.identity_share))
    view_sd = np.float32(math.sqrt(1.0 - spec.identity_share))
    noise_sd = np.float32(spec.noise / math.sqrt(spec.dim))

    def views(labels: np.ndarray) -> np.ndarray:
        z = centres[labels] + view_sd * rng.standard_normal((len(labels), spec.rank), np.float32)
        x = z @ lift + mean
        x += noise_sd * rng.standard_normal(x.shape, np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    labels = rng.integers(n_ids, size=n)
    if paths is None:
        gallery = np.empty((n, spec.dim), np.float32)
    else:
        tmp = paths[0].with_suffix(".part.npy")
        gallery = np.lib.format.open_memmap(tmp, "w+", np.float32, (n, spec.dim))
    for lo, hi in _chunks(n, chunk):
        gallery[lo:hi] = views(labels[lo:hi])
    # queries: fresh (held-out) views of identities the gallery holds
    queries = views(rng.choice(np.unique(labels), size=n_queries, replace=True))
    if paths is not None:
        gallery.flush()  # type: ignore[union-attr]
        del gallery
        tmp.rename(paths[0])
        np.save(paths[1], queries)
        return np.load(paths[0], mmap_mode="r"), queries
    return gallery, queries


# --- indexes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexSpec:
    """One index to measure: a FAISS factory and the search knob swept to reach the target.

    ``knob2``/``values2`` name a second knob (``k_factor`` of a re-ranked index): ``knob`` is
    swept for each of its values (a larger ``k_factor`` may let a smaller ``efSearch`` do).
    """

    name: str
    factory: str
    kind: str = "exact"  # "exact", "hnsw", "ivf", "ivfpq", "refine": what --indexes picks
    knob: str = ""  # "nprobe" / "efSearch"; "" = nothing to tune (exact)
    values: tuple[int, ...] = ()
    max_train: int = 0  # training vectors (IVF, PQ, PCA); 0 = none needed
    knob2: str = ""  # e.g. "k_factor"; "" = one knob
    values2: tuple[int, ...] = ()
    build_params: str = ""  # knobs set before adding, e.g. "efConstruction=80"

    @property
    def slug(self) -> str:
        """The index's file name part in the cache (factory and build knobs)."""
        tail = f"_{self.build_params}" if self.build_params else ""
        return (self.factory + tail).replace(",", "_").replace("=", "")

    def settings(self) -> list[list[str]]:
        """The sweep: one list of knob settings per value of ``knob2``, cheapest first."""
        seconds = [f",{self.knob2}={v}" for v in self.values2] if self.knob2 else [""]
        head = f"{self.build_params}," if self.build_params else ""
        return [[f"{head}{self.knob}={v}{tail}" for v in self.values] for tail in seconds]


def _nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: about 4 sqrt(n) (FAISS's guideline is 4-16 sqrt(n)),
    a power of two, and at most n / 39 so k-means has the 39 points per list it asks for."""
    lists = 2 ** round(math.log2(4 * math.sqrt(n)))
    while lists > 1 and lists * 39 > n:
        lists //= 2
    return max(1, lists)


REFINE_DIMS = 256
PCA_TRAIN = 100_000  # training vectors for the PCA of the re-ranked index
REFINE_EF_CONSTRUCTION = 80  # FAISS's default 40 builds a graph that misses neighbours at 1M


def default_specs(n: int, dim: int) -> list[IndexSpec]:
    """Exact search and the approximate indexes worth comparing at ``n`` vectors of ``dim``."""
    lists = _nlist(n)
    train = min(n, 40 * lists)
    probes = tuple(p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) if p <= lists)
    pq = next(m for m in (160, 128, 80, 64, 32, 16, 8, 4, 2, 1) if dim % m == 0 and m <= dim)
    ef = (16, 32, 64, 128, 256, 512)
    out = [
        IndexSpec("exact (Flat)", "IDMap2,Flat"),
        IndexSpec("HNSW32", "IDMap2,HNSW32", "hnsw", "efSearch", ef),
        IndexSpec(f"IVF{lists},Flat", f"IVF{lists},Flat", "ivf", "nprobe", probes, train),
    ]
    if dim > REFINE_DIMS and n > REFINE_DIMS:
        # the embeddings are low-rank: walk the graph in REFINE_DIMS PCA dimensions, re-rank
        # k_factor x k candidates exactly on the full vectors (",RFlat")
        name = f"PCA{REFINE_DIMS},HNSW32,RFlat"
        out.append(
            IndexSpec(
                f"{name} efC{REFINE_EF_CONSTRUCTION}",
                f"IDMap2,{name}",
                "refine",
                "efSearch",
                (*ef, 768, 1024),
                min(n, PCA_TRAIN),
                "k_factor",
                (1, 2, 4),
                f"efConstruction={REFINE_EF_CONSTRUCTION}",
            )
        )
    if train >= 39 * 256:  # PQ's 256-centroid codebooks need that many (FAISS prints otherwise)
        # "np": no polysemous training (FAISS's default for PQ; minutes per codebook at 1280-d)
        name = f"IVF{lists},PQ{pq}"
        out.append(IndexSpec(name, f"{name}np", "ivfpq", "nprobe", probes, train))
    return out


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's exact top-k ids found in its approximate top-k."""
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found, truth, strict=True))
    return hits / (len(truth) * k)


def _latencies_ms(search: Callable[[np.ndarray], object], queries: np.ndarray) -> np.ndarray:
    """Single-query wall times (ms), one query at a time, after one warm-up query.

    Every query is timed in two passes and the faster time counts: on a shared machine a query
    that is preempted measures the neighbours' load, not the index.
    """
    search(queries[:1])
    out = np.full(len(queries), np.inf)
    for _ in range(2):
        for i in range(len(queries)):
            t0 = time.perf_counter()
            search(queries[i : i + 1])
            out[i] = min(out[i], (time.perf_counter() - t0) * 1000.0)
    return out


def _row(
    *,
    backend: str,
    name: str,
    factory: str,
    params: str,
    n: int,
    dim: int,
    recall: float,
    lat: np.ndarray,
    memory: int,
    build_s: float,
    cached: bool,
    target_recall: float,
    target_p99_ms: float,
) -> dict:
    p99 = float(np.percentile(lat, 99))
    return {
        "backend": backend,
        "build_s": round(build_s, 1),
        "cached": cached,
        "dim": dim,
        "factory": factory,
        "index": name,
        "memory_mb": round(memory / 2**20, 1),
        "meets_target": bool(recall >= target_recall and p99 < target_p99_ms),
        "n": n,
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(p99, 3),
        "queries": len(lat),
        "recall_at_10": round(recall, 4),
        "search_params": params,
    }


def _index_path(spec: IndexSpec, cache: Path, key: str) -> Path:
    return cache / f"index_{key}_{spec.slug}.faiss"


def _built_index(
    spec: IndexSpec,
    gallery: np.ndarray,
    cache: Path | None,
    key: str,
    threads: int,
    chunk: int = 50_000,
) -> tuple[FaissIndex, int, float, bool]:
    """``(index, bytes, build seconds, from cache)``: loaded from ``cache`` or built (and saved)."""
    n, dim = gallery.shape
    path = None if cache is None else _index_path(spec, cache, key)
    if path is not None and path.is_file():
        meta = json.loads(path.with_suffix(".build.json").read_text())
        return FaissIndex.load(path, check_hash=False), path.stat().st_size, meta["build_s"], True
    faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    index = FaissIndex(dim, factory=spec.factory, search_params=spec.build_params)
    if not index.is_trained:
        pick = np.sort(np.random.default_rng(1).choice(n, min(n, spec.max_train), replace=False))
        index.train(np.asarray(gallery[pick]))
    for lo, hi in _chunks(n, chunk):
        index.add(np.arange(lo, hi, dtype=np.int64), np.asarray(gallery[lo:hi]), check_ids=False)
    build_s = time.perf_counter() - t0
    if path is None:
        size = faiss.serialize_index(index._index).nbytes
        return index, size, build_s, False
    index.save(path)
    path.with_suffix(".build.json").write_text(json.dumps({"build_s": build_s}))
    return index, path.stat().st_size, build_s, False


def _tune(
    index: FaissIndex, spec: IndexSpec, queries: np.ndarray, truth: np.ndarray, target: float
) -> tuple[str, float]:
    """The knob setting to measure and its recall@10: per value of ``spec.knob2``, the smallest
    ``spec.knob`` reaching ``target``; of those, the one with the smallest ``knob`` (the cost
    driver: ``efSearch`` is how much graph a query walks, ``k_factor`` only how many full
    vectors it re-reads), then the smallest ``knob2``; when none reaches it, the best recall.
    Chosen from recall alone, so the choice does not depend on the machine's load."""
    best = ("", -1.0)
    reached: list[tuple[int, int, str, float]] = []
    for second, sweep in zip(spec.values2 or (0,), spec.settings(), strict=True):
        for value, params in zip(spec.values, sweep, strict=True):
            index.set_search_params(params)
            _, found = index.search(queries, 10)
            recall = _recall(found, truth)
            if recall > best[1]:
                best = (params, recall)
            if recall >= target:
                reached.append((value, second, params, recall))
                break
    chosen = min(reached)[2:] if reached else best
    index.set_search_params(chosen[0])
    return chosen


KINDS = ("hnsw", "ivf", "ivfpq", "refine")


def _parse_sizes(sizes: Sequence[int]) -> list[int]:
    out = [int(s) for s in sizes]
    if not out or any(s < 100 for s in out):
        raise ReidTraceError(
            f"bench sizes must each be >= 100 vectors, got {list(sizes)}",
            hint="e.g. --sizes 100000,1000000",
        )
    return out


def bench_search(
    sizes: Sequence[int] = (100_000, 1_000_000),
    *,
    n_queries: int = 1000,
    latency_queries: int = 1000,
    exact_latency_queries: int = 100,
    kinds: Sequence[str] = KINDS,
    spec: SyntheticSpec = SyntheticSpec(),
    specs: Callable[[int, int], list[IndexSpec]] = default_specs,
    extra_backends: Sequence[Callable[..., dict | None]] = (),
    cache: Path | None = None,
    threads: int = 2,
    target_recall: float = 0.95,
    target_p99_ms: float = 5.0,
    build: bool = True,
    progress: Progress | None = None,
) -> list[dict]:
    """One row (dict with :data:`ROW_KEYS`) per size and index (see the module doc).

    With ``cache``, exact search results are kept there too; ``build=False`` measures only the
    indexes already in ``cache`` (skipping the others), so a rerun on a quiet machine queries
    and never builds.

    ``threads`` is what building and the recall sweep may use (FAISS OpenMP); latency is
    always measured on one thread. ``extra_backends`` are called as
    ``f(gallery=, queries=, truth=, n=, latency_queries=)`` after the FAISS rows of each size
    and return one more row (or ``None`` to skip that size), e.g. the vector database.
    """
    sizes = _parse_sizes(sizes)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ReidTraceError(
            f"unknown index kinds {unknown}", hint=f"choose among {', '.join(KINDS)}"
        )
    if n_queries < 1 or latency_queries < 1 or exact_latency_queries < 1:
        raise ReidTraceError("query counts must be >= 1", hint="e.g. --queries 1000")
    if threads < 1:
        raise ReidTraceError(f"threads must be >= 1, got {threads}", hint="e.g. --threads 2")
    if not build and cache is None:
        raise ReidTraceError(
            "measuring only prebuilt indexes needs the folder they were cached in",
            hint="pass --cache FOLDER (where a run with building saved them)",
        )
    rows: list[dict] = []
    say = progress or (lambda stage, done, total: None)
    for n in sizes:
        say(f"vectors n={n}", 0, 1)
        gallery, queries = _vectors(n, n_queries, spec, cache, build)
        key = spec.key(n, n_queries)
        truth_path = None if cache is None else cache / f"truth_{key}.npy"
        truth = np.load(truth_path) if truth_path is not None and truth_path.is_file() else None
        plan = [ix for ix in specs(n, spec.dim) if ix.kind == "exact" or ix.kind in kinds]
        # exact search reads every vector per query: bound its latency run (20 queries at 1M)
        exact_lat = min(exact_latency_queries, max(10, 20_000_000 // n))
        for step, ix in enumerate(plan):
            if not build and not _index_path(ix, cache, key).is_file():  # type: ignore[arg-type]
                say(f"n={n} {ix.name}: not in the cache, skipped", step, len(plan))
                continue
            say(f"n={n} {ix.name}", step, len(plan))
            index, size, build_s, cached = _built_index(ix, gallery, cache, key, threads)
            faiss.omp_set_num_threads(threads)
            if not ix.knob:  # exact: the truth every other row is scored against
                if truth is None:
                    _, truth = index.search(queries, 10)
                    if truth_path is not None:
                        np.save(truth_path, truth)
                params, recall = "", 1.0
                lat_q = queries[: min(exact_lat, len(queries))]
            else:
                if truth is None:
                    raise ValueError("the first index spec must be exact (no knob)")
                params, recall = _tune(index, ix, queries, truth, target_recall)
                lat_q = queries[: min(latency_queries, len(queries))]
            faiss.omp_set_num_threads(1)
            lat = _latencies_ms(lambda q, index=index: index.search(q, 10), lat_q)
            rows.append(
                _row(
                    backend="faiss",
                    name=ix.name,
                    factory=ix.factory,
                    params=params,
                    n=n,
                    dim=spec.dim,
                    recall=recall,
                    lat=lat,
                    memory=size,
                    build_s=build_s,
                    cached=cached,
                    target_recall=target_recall,
                    target_p99_ms=target_p99_ms,
                )
            )
            del index
        if truth is None:
            raise ReidTraceError(
                f"no exact search results for n={n} to score the indexes against",
                hint="run once without --no-build so the exact index is built and cached",
            )
        for extra in extra_backends:
            row = extra(
                gallery=gallery, queries=queries, truth=truth, n=n, latency_queries=latency_queries
            )
            if row is not None:
                rows.append(row)
        say(f"n={n}", len(plan), len(plan))
    faiss.omp_set_num_threads(threads)
    return rows


def _vectors(
    n: int, n_queries: int, spec: SyntheticSpec, cache: Path | None, build: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The generated vectors; without ``build`` only from the cache (never minutes of work)."""
    if not build:
        key = spec.key(n, n_queries)
        if not (cache / f"queries_{key}.npy").is_file():  # type: ignore[operator]
            raise ReidTraceError(
                f"no cached vectors for n={n}, {n_queries} queries in {cache}",
                hint="run once without --no-build (same --sizes and --queries) to generate them",
            )
    return synthetic_embeddings(n, n_queries, spec, out=cache)


QDRANT_MAX = 20_000
"""Largest gallery the Qdrant row is measured on: local mode (the only Qdrant here) is numpy
brute force held in Python objects; a Qdrant server is the backend for larger galleries."""


def qdrant_row(
    *,
    gallery: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    n: int,
    latency_queries: int,
    max_n: int = QDRANT_MAX,
) -> dict | None:
    """The Qdrant backend (local, in memory) on the same vectors: its recall@10 against FAISS
    exact search is the parity check; ``None`` above ``max_n`` or without qdrant-client."""
    from indexer.index.qdrant_index import QdrantIndex, close_clients, qdrant_client

    if qdrant_client is None or n > max_n:
        return None
    t0 = time.perf_counter()
    index = QdrantIndex.create(
        f"qdrant://:memory:?collection=bench_{n}", dim=gallery.shape[1], metric="ip"
    )
    for lo, hi in _chunks(n, 10_000):
        index.add(np.arange(lo, hi, dtype=np.int64), np.asarray(gallery[lo:hi]), check_ids=False)
    build_s = time.perf_counter() - t0
    try:
        _, found = index.search(queries, 10)
        lat = _latencies_ms(lambda q: index.search(q, 10), queries[:latency_queries])
    finally:
        close_clients()
    return _row(
        backend="qdrant (local)",
        name="Qdrant",
        factory="qdrant://",
        params="",
        n=n,
        dim=gallery.shape[1],
        recall=_recall(found, truth),
        lat=lat,
        memory=gallery.shape[0] * gallery.shape[1] * 4,
        build_s=build_s,
        cached=False,
        target_recall=0.95,
        target_p99_ms=5.0,
    )


def markdown_table(rows: Sequence[dict]) -> str:
    """The rows as the Markdown table docs/storage.md shows."""
    head = (
        "| n | index | backend | search params | recall@10 | p50 ms | p99 ms | memory MB "
        "| build s |\n| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    for r in rows:
        if "recall_at_10" not in r:
            continue
        mark = " ✓" if r["meets_target"] else ""
        lines.append(
            f"| {r['n']:,} | {r['index']}{mark} | {r['backend']} | {r['search_params'] or '-'} "
            f"| {r['recall_at_10']:.3f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['memory_mb']:,.0f} | {r['build_s']:.0f} |"
        )
    return "\n".join(lines)
