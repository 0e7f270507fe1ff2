"""Recall grid of candidate FAISS factories on the ``bench search`` vectors (issue 22, "Scale").

Usage::

    python benchmarks/ann_sweep.py --n 100000 --cache /tmp/ann_cache \\
        "IDMap2,PCA256,HNSW32,RFlat" "IDMap2,PCA256,HNSW32,RFlat|efConstruction=120"
    python benchmarks/ann_sweep.py --n 100000 --cache /tmp/ann_cache --faiss-pca \\
        "IDMap2,PCA256,HNSW32,RFlat"

Each argument is a factory, optionally ``|`` knobs set before adding (``efConstruction=N``).
The vectors are ``bench search``'s (:func:`synthetic_embeddings`, 1000 held-out queries; kept
in ``--cache`` with the exact top-10, computed once). Every factory is built (2 threads, PCA
trained on up to 100k vectors) and searched over a grid, ``efSearch`` 16..512 for each
``k_factor`` in 1, 2, 4, 8 (one value when it has no ``RFlat``), stopping a row at recall@10
0.97; the first setting reaching 0.95 per ``k_factor`` is timed on 300 single queries, one
thread (best of two passes; wall time, so only comparable on one quiet machine). Built as the
product builds it (:class:`FaissIndex`, whose PCA is not centred) unless ``--faiss-pca``: then
with ``faiss.index_factory`` alone, whose PCA subtracts the mean. ``--metric l2`` ranks unit
vectors as ``ip`` does (the truth is the same). One JSON line per factory.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np

from indexer.index.bench_search import _recall, synthetic_embeddings
from indexer.index.faiss_index import KNOB_ALIASES, FaissIndex


def _latency(search, queries: np.ndarray, n: int = 300) -> tuple[float, float]:
    faiss.omp_set_num_threads(1)
    search(queries[:1])
    best = np.full(n, np.inf)
    for _ in range(2):
        for i in range(n):
            t0 = time.perf_counter()
            search(queries[i : i + 1])
            best[i] = min(best[i], (time.perf_counter() - t0) * 1000)
    faiss.omp_set_num_threads(2)
    return round(float(np.percentile(best, 50)), 3), round(float(np.percentile(best, 99)), 3)


def _faiss_params(params: str) -> str:
    parts = (p.partition("=") for p in params.split(",") if p)
    return ",".join(f"{KNOB_ALIASES.get(k, k)}={v}" for k, _, v in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("factories", nargs="+")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--faiss-pca", action="store_true", help="FAISS's own (centred) PCA")
    ap.add_argument("--metric", choices=("ip", "l2"), default="ip")
    args = ap.parse_args()
    faiss.omp_set_num_threads(2)
    gallery, queries = synthetic_embeddings(args.n, 1000, out=args.cache)
    truth_path = args.cache / f"truth_{args.n}.npy"
    if truth_path.is_file():
        truth = np.load(truth_path)
    else:
        exact = faiss.IndexFlatIP(gallery.shape[1])
        for lo in range(0, args.n, 50_000):
            exact.add(np.asarray(gallery[lo : lo + 50_000]))
        truth = exact.search(queries, 10)[1]
        np.save(truth_path, truth)
        del exact
    for arg in args.factories:
        factory, _, build = arg.partition("|")
        t0 = time.perf_counter()
        pick = np.sort(np.random.default_rng(1).choice(args.n, min(args.n, 100_000), False))
        if args.faiss_pca:
            metric = faiss.METRIC_INNER_PRODUCT if args.metric == "ip" else faiss.METRIC_L2
            raw = faiss.index_factory(gallery.shape[1], factory, metric)
            if build:
                faiss.ParameterSpace().set_index_parameters(raw, _faiss_params(build))
            raw.train(np.asarray(gallery[pick]))
            for lo in range(0, args.n, 50_000):
                chunk = np.asarray(gallery[lo : lo + 50_000])
                raw.add_with_ids(chunk, np.arange(lo, lo + len(chunk), dtype=np.int64))

            def set_params(p: str, raw: faiss.Index = raw) -> None:
                faiss.ParameterSpace().set_index_parameters(raw, _faiss_params(p))

            search = raw.search
            index_obj = raw
        else:
            index = FaissIndex(
                gallery.shape[1], factory=factory, search_params=build, metric=args.metric
            )
            if not index.is_trained:
                index.train(np.asarray(gallery[pick]))
            for lo in range(0, args.n, 50_000):
                chunk = np.asarray(gallery[lo : lo + 50_000])
                ids = np.arange(lo, lo + len(chunk), dtype=np.int64)
                index.add(ids, chunk, check_ids=False)
            set_params = index.set_search_params
            search = index.search
            index_obj = index._index
        build_s = time.perf_counter() - t0
        grid, timed = [], {}
        refine = "RFlat" in factory or "Refine" in factory
        for kf in (1, 2, 4, 8) if refine else (None,):
            for ef in (16, 32, 64, 128, 256, 512):
                params = f"efSearch={ef}" + (f",k_factor={kf}" if kf else "")
                set_params(params)
                recall = _recall(search(queries, 10)[1], truth)
                grid.append((params, round(recall, 4)))
                if recall >= 0.95 and kf not in timed:
                    timed[kf] = (params, _latency(lambda q, s=search: s(q, 10), queries))
                if recall >= 0.97:
                    break
        row = {
            "n": args.n,
            "factory": factory,
            "build_params": build,
            "pca": "faiss (centred)" if args.faiss_pca else "uncentred",
            "metric": args.metric,
            "build_s": round(build_s, 1),
            "memory_mb": round(faiss.serialize_index(index_obj).nbytes / 2**20),
            "grid": grid,
            "latency_ms_p50_p99": dict(timed.values()),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
