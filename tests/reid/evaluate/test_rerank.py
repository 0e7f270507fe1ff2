"""k-reciprocal re-ranking and query expansion against straightforward full-matrix references."""

from __future__ import annotations

import importlib.util
import resource
import time
from pathlib import Path

import numpy as np
import pytest

from reid.errors import ReidTraceError
from reid.evaluate.protocol import cosine_distmat, evaluate_rank
from reid.evaluate.rerank import k_reciprocal_rerank, query_expansion


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def reference_rerank(q: np.ndarray, g: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    """Zhong et al. 2017 written out with full matrices and Python sets (slow, obvious)."""
    f = _unit(np.concatenate([q, g]).astype(np.float64)).astype(np.float32)
    n, nq = len(f), len(q)
    d = np.maximum(1.0 - f @ f.T, 0.0)
    d = d / d.max(axis=1, keepdims=True)  # the public code's row normalisation
    rank = np.argsort(d, axis=1, kind="stable")

    def nbrs(i: int, k: int) -> set[int]:  # N(i, k): i itself and its k nearest
        return set(rank[i, : k + 1].tolist())

    def recip(i: int, k: int) -> set[int]:  # R(i, k), equation 4
        return {j for j in nbrs(i, k) if i in nbrs(j, k)}

    half = int(np.around(k1 / 2.0))
    v = np.zeros((n, n))
    for p in range(n):
        r_p = recip(p, k1)
        star = set(r_p)
        for cand in r_p:  # equation 6
            r_c = recip(cand, half)
            if len(r_c & r_p) > 2.0 / 3.0 * len(r_c):
                star |= r_c
        idx = sorted(star)
        w = np.exp(-d[p, idx])  # equation 7
        v[p, idx] = w / w.sum()
    if k2 > 1:  # equation 11
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jac = np.empty((nq, n - nq))
    for i in range(nq):  # equation 8: 1 - Σ min / Σ max
        for j in range(nq, n):
            jac[i, j - nq] = 1 - np.minimum(v[i], v[j]).sum() / np.maximum(v[i], v[j]).sum()
    return (1 - lam) * jac + lam * d[:nq, nq:]


def clustered(
    ids: int, per_id: int, dim: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    pids = np.repeat(np.arange(1, ids + 1), per_id)
    feats = centres[pids - 1] + noise * rng.normal(size=(len(pids), dim))
    return _unit(feats).astype(np.float32), pids


@pytest.mark.parametrize(
    ("nq", "ng", "k1", "k2", "lam", "noise"),
    [
        (8, 40, 20, 6, 0.3, 0.8),  # paper defaults
        (10, 50, 5, 1, 0.3, 0.6),  # no local query expansion
        (6, 30, 7, 3, 0.0, 1.0),  # Jaccard only, odd k1 (round-half-even of 3.5)
        (5, 20, 8, 4, 1.0, 0.5),  # original distance only
        (3, 9, 20, 6, 0.3, 0.7),  # k1 larger than the whole set
    ],
)
def test_matches_the_full_matrix_reference(nq, ng, k1, k2, lam, noise) -> None:
    feats, _ = clustered(ids=6, per_id=(nq + ng + 5) // 6, dim=16, noise=noise, seed=nq + ng)
    q, g = feats[:nq], feats[nq : nq + ng]
    got = k_reciprocal_rerank(q, g, k1=k1, k2=k2, lambda_value=lam)
    want = reference_rerank(q, g, k1, k2, lam)
    assert got.dtype == np.float32 and got.shape == (nq, ng)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_ties_follow_a_stable_sort() -> None:
    """Duplicate features tie; both implementations must pick neighbours in index order."""
    feats, _ = clustered(ids=4, per_id=6, dim=8, noise=0.5, seed=3)
    feats = np.concatenate([feats, feats[:6], feats[10:12]])  # exact duplicates
    q, g = feats[:5], feats[5:]
    got = k_reciprocal_rerank(q, g, k1=6, k2=3)
    np.testing.assert_allclose(got, reference_rerank(q, g, 6, 3, 0.3), atol=1e-5)


def test_matches_the_authors_public_code() -> None:
    """The public code (as kept by torchreid) squares its input, so it gets sqrt(1 - cos)."""
    spec = importlib.util.find_spec("torchreid")
    if spec is None or spec.origin is None:
        pytest.skip("torchreid is not installed")
    path = Path(spec.origin).parent / "reid" / "utils" / "rerank.py"
    mod_spec = importlib.util.spec_from_file_location("_public_rerank", path)
    assert mod_spec is not None and mod_spec.loader is not None
    public = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(public)  # numpy only: no torch import
    feats, _ = clustered(ids=8, per_id=8, dim=32, noise=0.9, seed=11)
    q, g = feats[:12], feats[12:]

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(cosine_distmat(a, b), 0.0))

    want = public.re_ranking(dist(q, g), dist(q, q), dist(g, g), k1=20, k2=6, lambda_value=0.3)
    np.testing.assert_allclose(k_reciprocal_rerank(q, g), want, atol=1e-5)


def test_reranking_improves_map_on_clusters() -> None:
    """Identities are clusters; every camera sees the same identities, the gallery is large."""
    feats, pids = clustered(ids=30, per_id=12, dim=24, noise=1.1, seed=5)
    cams = np.tile(np.arange(1, 7), len(pids) // 6)
    is_q = np.arange(len(pids)) % 12 == 0  # one query per identity, camera 1
    q, g = feats[is_q], feats[~is_q]
    args = (pids[is_q], pids[~is_q], cams[is_q], cams[~is_q])
    base = evaluate_rank(cosine_distmat(q, g), *args)
    rr = evaluate_rank(k_reciprocal_rerank(q, g), *args)
    assert rr.mAP > base.mAP + 0.05, (base.mAP, rr.mAP)


def test_raw_and_unit_features_give_the_same_result() -> None:
    feats, _ = clustered(ids=5, per_id=8, dim=8, noise=0.6, seed=2)
    scale = np.linspace(0.5, 3.0, len(feats), dtype=np.float32)[:, None]
    a = k_reciprocal_rerank(feats[:6], feats[6:], k1=6, k2=2)
    b = k_reciprocal_rerank(feats[:6] * scale[:6], feats[6:] * scale[6:], k1=6, k2=2)
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs", [{"k1": 0}, {"k2": 0}, {"lambda_value": 1.5}, {"k1": 2.5}, {"k2": True}]
)
def test_bad_parameters_are_user_errors(kwargs) -> None:
    feats, _ = clustered(ids=2, per_id=4, dim=4, noise=0.1, seed=0)
    with pytest.raises(ReidTraceError):
        k_reciprocal_rerank(feats[:2], feats[2:], **kwargs)


def test_dimension_mismatch_and_empty_inputs_are_user_errors() -> None:
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ReidTraceError, match="dim"):
        k_reciprocal_rerank(a, np.ones((3, 5), np.float32))
    with pytest.raises(ReidTraceError, match="nothing to re-rank"):
        k_reciprocal_rerank(a, np.ones((0, 4), np.float32))


def reference_qe(q: np.ndarray, g: np.ndarray, k: int, alpha: float) -> np.ndarray:
    sim = _unit(q) @ _unit(g).T
    out = []
    for i, row in enumerate(sim):
        top = np.argsort(-row, kind="stable")[:k]
        w = np.maximum(row[top], 0) ** alpha
        out.append(_unit(q[i : i + 1])[0] + (w[:, None] * _unit(g)[top]).sum(axis=0))
    return _unit(np.array(out))


@pytest.mark.parametrize(("k", "alpha"), [(1, 0.0), (5, 0.0), (5, 3.0), (500, 1.0)])
def test_query_expansion_matches_reference(k: int, alpha: float) -> None:
    feats, _ = clustered(ids=6, per_id=10, dim=16, noise=0.7, seed=4)
    q, g = feats[:10], feats[10:]
    got = query_expansion(q, g, k=k, alpha=alpha)
    np.testing.assert_allclose(got, reference_qe(q, g, min(k, len(g)), alpha), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_query_expansion_improves_map_on_clusters() -> None:
    feats, pids = clustered(ids=30, per_id=12, dim=24, noise=1.1, seed=5)
    cams = np.tile(np.arange(1, 7), len(pids) // 6)
    is_q = np.arange(len(pids)) % 12 == 0
    q, g = feats[is_q], feats[~is_q]
    args = (pids[is_q], pids[~is_q], cams[is_q], cams[~is_q])
    base = evaluate_rank(cosine_distmat(q, g), *args)
    qe = evaluate_rank(cosine_distmat(query_expansion(q, g, k=5), g), *args)
    assert qe.mAP > base.mAP, (base.mAP, qe.mAP)


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"alpha": -1.0}])
def test_query_expansion_bad_parameters(kwargs) -> None:
    a = np.ones((2, 4), np.float32)
    with pytest.raises(ReidTraceError):
        query_expansion(a, a, **kwargs)


@pytest.mark.slow
def test_20k_by_20k_fits_in_a_few_gib() -> None:
    """20k queries x 20k gallery, 512-d random features: report time and peak RSS."""
    rng = np.random.default_rng(0)
    q = _unit(rng.normal(size=(20_000, 512)).astype(np.float32))
    g = _unit(rng.normal(size=(20_000, 512)).astype(np.float32))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0 = time.perf_counter()
    dist = k_reciprocal_rerank(q, g)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux
    print(f"\nre-ranking 20k x 20k: {seconds:.1f} s, peak RSS {peak:.2f} GiB (before {before:.2f})")
    assert dist.shape == (20_000, 20_000) and np.isfinite(dist).all()
    assert peak < 4.0


@pytest.mark.parametrize("k", [1, 3, 10, 40])
def test_top_k_equals_a_stable_argsort_with_many_ties(k: int) -> None:
    from reid.evaluate.rerank import _stable_topk

    d = np.random.default_rng(k).integers(0, 4, size=(30, 40)).astype(np.float32)
    np.testing.assert_array_equal(_stable_topk(d, k), np.argsort(d, axis=1, kind="stable")[:, :k])


def test_jaccard_of_a_set_is_reranking_with_lambda_zero_on_its_blocks() -> None:
    from reid.evaluate.rerank import k_reciprocal_jaccard

    x = np.random.default_rng(3).standard_normal((120, 16)).astype(np.float32)
    jac = k_reciprocal_jaccard(x, k1=10, k2=3)
    want = k_reciprocal_rerank(x[:40], x[40:], k1=10, k2=3, lambda_value=0.0)
    np.testing.assert_allclose(jac[:40, 40:], want, atol=1e-6)
    np.testing.assert_allclose(jac, jac.T, atol=1e-6)
    assert np.allclose(np.diag(jac), 0.0, atol=1e-6) and jac.shape == (120, 120)
