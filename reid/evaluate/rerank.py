"""Re-ranking a query-to-gallery search, numpy only and with bounded memory.

Two post-processing steps that trade a little compute for accuracy, both transductive (they look
at the whole query + gallery set):

- :func:`k_reciprocal_rerank`: k-reciprocal encoding re-ranking, Zhong et al., "Re-ranking Person
  Re-identification with k-reciprocal Encoding", CVPR 2017 (defaults k1=20, k2=6, lambda=0.3, the
  paper's). It follows the authors' public code, which is what published numbers use:
  distances are row-normalised (divided by each row's maximum), the expansion test is
  ``|R(q, k1/2) ∩ R(p, k1)| > 2/3 |R(q, k1/2)|`` and the Jaccard distance is
  ``1 - Σ min(V_p, V_g) / Σ max(V_p, V_g)``. The original distance between unit features is
  their squared Euclidean distance, ``2 (1 - cos)``; the row normalisation cancels the 2, so
  the cosine distance ``1 - cos`` is used.
- :func:`query_expansion`: average / alpha query expansion (Chum et al., ICCV 2007; Radenović
  et al., TPAMI 2018): each query is replaced by the normalised weighted sum of itself and its
  top-k gallery neighbours, weight ``sim ** alpha`` (alpha=0: plain average, AQE).

Why a rewrite instead of the public code (kept by torchreid as ``re_ranking``): that code holds
five dense (N, N) matrices, N = queries + gallery, about 8.5 GB for Market-1501's 23k images and
25 GB at 20k queries + 20k gallery. Here nothing of size (N, N) is ever held:

- the ranking needs only the ``k1 + 1`` nearest neighbours of each row, found in row chunks of
  the distance matrix (distances are recomputed from the features where needed);
- ``V`` (the k-reciprocal encoding) is sparse: a few dozen non-zeros per row, kept in CSR/CSC
  numpy arrays (float32 weights, int32 indices);
- Jaccard distances are accumulated for a chunk of query rows at a time through an inverted
  index (the CSC columns of ``V``), only against gallery columns.

Peak memory is O(N (D + nnz/row)) plus one chunk, a few hundred MB at 20k x 20k.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reid.errors import ReidTraceError
from reid.evaluate.protocol import unit_pair
from reid.vectors import l2_normalize

__all__ = ["k_reciprocal_jaccard", "k_reciprocal_rerank", "query_expansion"]

_CHUNK_ELEMS = 1 << 23
"""Elements of one (rows, N) distance chunk: 8M float32 = 32 MB; bounds every temporary."""

Progress = Callable[[str, int, int], None]


def k_reciprocal_rerank(
    query_feats: np.ndarray,
    gallery_feats: np.ndarray,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    progress: Progress | None = None,
) -> np.ndarray:
    """The re-ranked (num_query, num_gallery) float32 distance matrix (smaller = more alike).

    ``query_feats`` (q, d) and ``gallery_feats`` (g, d) are embeddings; they are L2-normalised
    here, so raw and unit-length features give the same result. ``k1`` is the size of the
    k-reciprocal neighbourhood, ``k2`` that of the local query expansion of the encoding (1 =
    none), ``lambda_value`` the weight of the original distance in the final one. ``progress``
    gets ``(stage, done, total)`` as in the CLI's progress bar.
    """
    _check_params(k1, k2, lambda_value)
    q, g = _unit_pair(query_feats, gallery_feats)
    feats = np.concatenate([q, g])
    del q, g
    num_q, n = len(query_feats), len(feats)
    kk = min(k1 + 1, n)  # what initial_rank[i, :k1 + 1] gives when n is small
    kh = min(int(np.around(k1 / 2.0)) + 1, n)  # the public code's half neighbourhood
    kq = min(k2, n)

    topk, rowmax = _neighbours(feats, max(kk, kq), progress)
    csr = _encode(feats, topk, rowmax, kk, kh)
    if k2 != 1:
        csr = _expand(csr, topk[:, :kq], n)
    del topk
    csc = _transpose(csr, n)
    return _final(feats, rowmax, csr, csc, num_q, lambda_value, progress)


def k_reciprocal_jaccard(
    feats: np.ndarray,
    *,
    k1: int = 20,
    k2: int = 6,
    progress: Progress | None = None,
) -> np.ndarray:
    """The (n, n) float32 k-reciprocal Jaccard distance of a set of features to itself.

    What unsupervised ReID clusters on (cluster-contrast, SpCL: DBSCAN over this matrix): the
    same encoding as :func:`k_reciprocal_rerank` with ``lambda_value=0``, but over one copy of
    the set, so no feature counts its own duplicate among its neighbours (passing the set as
    both query and gallery would). Symmetric, and 0 on the diagonal, up to float rounding.
    """
    _check_params(k1, k2, 0.0)
    f, _ = _unit_pair(feats, feats[:1])
    n = len(f)
    kk = min(k1 + 1, n)
    kh = min(int(np.around(k1 / 2.0)) + 1, n)
    kq = min(k2, n)
    topk, rowmax = _neighbours(f, max(kk, kq), progress)
    csr = _encode(f, topk, rowmax, kk, kh)
    if k2 != 1:
        csr = _expand(csr, topk[:, :kq], n)
    del topk
    csc = _transpose(csr, n)
    return _final(f, rowmax, csr, csc, n, 0.0, progress, gallery_start=0)


def query_expansion(
    query_feats: np.ndarray,
    gallery_feats: np.ndarray,
    *,
    k: int = 5,
    alpha: float = 0.0,
) -> np.ndarray:
    """Expanded query features (q, d) float32, unit length: alpha-QE over the top-k gallery.

    ``new_q = normalise(q + Σ_{j in topk(q)} max(cos(q, g_j), 0) ** alpha * g_j)``; alpha=0 is
    average query expansion. Score the result against the unchanged gallery (e.g. with
    ``reid.evaluate.protocol.cosine_distmat``). Processed in query chunks, so memory stays bounded.
    """
    if not isinstance(k, int | np.integer) or k < 1:
        raise ReidTraceError(f"query expansion needs k >= 1, got {k!r}", hint="try k=5")
    if not np.isfinite(alpha) or alpha < 0:
        raise ReidTraceError(f"query expansion needs alpha >= 0, got {alpha!r}", hint="try 0 or 3")
    q, g = _unit_pair(query_feats, gallery_feats)
    k = min(int(k), len(g))
    out = np.empty_like(q)
    rows = max(1, _CHUNK_ELEMS // max(len(g), 1))
    for lo in range(0, len(q), rows):
        qc = q[lo : lo + rows]
        sim = qc @ g.T
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < len(g) else _all_cols(sim)
        w = np.maximum(np.take_along_axis(sim, idx, axis=1), 0.0)
        w = w**alpha if alpha else np.ones_like(w)
        expanded = qc + np.einsum("rk,rkd->rd", w, g[idx])
        out[lo : lo + rows] = expanded
    return l2_normalize(out)  # float32, as q


# --- the steps of k-reciprocal re-ranking -------------------------------------------------------
def _check_params(k1: int, k2: int, lambda_value: float) -> None:
    for name, val in (("k1", k1), ("k2", k2)):
        if not isinstance(val, int | np.integer) or isinstance(val, bool) or val < 1:
            raise ReidTraceError(
                f"re-ranking needs {name} >= 1, got {val!r}", hint="the paper uses k1=20, k2=6"
            )
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ReidTraceError(
            f"re-ranking needs 0 <= lambda_value <= 1, got {lambda_value!r}",
            hint="the paper uses lambda_value=0.3",
        )


def _unit_pair(query_feats: np.ndarray, gallery_feats: np.ndarray) -> tuple[np.ndarray, ...]:
    q, g = unit_pair(query_feats, gallery_feats)
    if len(q) == 0 or len(g) == 0:
        raise ReidTraceError(
            f"nothing to re-rank: {len(q)} queries and {len(g)} gallery entries",
            hint="check that the query and gallery folders hold images",
        )
    if not (np.isfinite(q).all() and np.isfinite(g).all()):
        raise ReidTraceError(
            "features have NaN or infinite values", hint="check the model and the images"
        )
    return q, g


def _all_cols(a: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.arange(a.shape[1]), a.shape).copy()


def _distance_rows(feats: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Rows lo:hi of the cosine distance matrix, float32, clipped at 0 (self = 0, not -1e-7)."""
    d = feats[lo:hi] @ feats.T
    np.subtract(1.0, d, out=d)
    return np.maximum(d, 0.0, out=d)


def _neighbours(
    feats: np.ndarray, k: int, progress: Progress | None
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest neighbours of every row, as a stable full argsort would order them, and
    every row's largest distance (the public code's normalisation)."""
    n = len(feats)
    topk = np.empty((n, k), np.int32)
    rowmax = np.empty(n, np.float32)
    rows = max(1, _CHUNK_ELEMS // n)
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        d = _distance_rows(feats, lo, hi)
        rowmax[lo:hi] = d.max(axis=1)
        topk[lo:hi] = _stable_topk(d, k)
        if progress:
            progress("re-ranking: neighbours", hi, n)
    # a row whose distances are all 0 (identical features) would divide by 0 below
    np.maximum(rowmax, np.float32(1e-12), out=rowmax)
    return topk, rowmax


def _stable_topk(d: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest entries per row, ordered by (distance, index).

    Exactly ``np.argsort(d, kind="stable")[:, :k]`` in O(n) per row: partition to find each
    row's k-th value, keep every entry up to it (ties included), and sort just those.
    """
    n = d.shape[1]
    if k >= n:
        return np.argsort(d, axis=1, kind="stable")[:, :k].astype(np.int32)
    kth = np.partition(d, k - 1, axis=1)[:, k - 1 : k]
    r, c = np.nonzero(d <= kth)  # row-major: c ascends within each row
    order = np.lexsort((c, d[r, c], r))
    r, c = r[order], c[order]
    starts = np.searchsorted(r, np.arange(len(d)))
    take = (starts[:, None] + np.arange(k)).ravel()
    return c[take].reshape(len(d), k).astype(np.int32)


def _pair_dist(
    feats: np.ndarray, rowmax: np.ndarray, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Normalised distances of (row, col) pairs, computed from the features."""
    out = np.empty(len(rows), np.float32)
    step = max(1, _CHUNK_ELEMS // feats.shape[1])
    for lo in range(0, len(rows), step):
        r, c = rows[lo : lo + step], cols[lo : lo + step]
        dot = np.einsum("ij,ij->i", feats[r], feats[c])
        out[lo : lo + step] = np.maximum(1.0 - dot, 0.0) / rowmax[r]
    return out


def _encode(
    feats: np.ndarray, topk: np.ndarray, rowmax: np.ndarray, kk: int, kh: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``V`` as CSR (indptr, indices, weights): each row's expanded k-reciprocal set R*(p, k1),
    weighted ``exp(-d(p, j))`` and normalised to sum 1 (equations 5-7 of the paper)."""
    n = len(topk)
    ar = np.arange(n)
    tk = topk[:, :kk]
    # R(p, k1): forward neighbours of p that have p among their own k1 + 1 neighbours
    recip = np.zeros((n, kk), bool)
    half = np.zeros((n, kh), bool)  # the same with k1 / 2, for the expansion
    rows = max(1, _CHUNK_ELEMS // (kk * kk))
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        recip[lo:hi] = (tk[tk[lo:hi]] == ar[lo:hi, None, None]).any(axis=2)
        th = topk[lo:hi, :kh]
        half[lo:hi] = (topk[th, :kh] == ar[lo:hi, None, None]).any(axis=2)

    pair_rows: list[np.ndarray] = []
    pair_cols: list[np.ndarray] = []
    rows = max(1, _CHUNK_ELEMS // (kk * kh * kk))
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        r_set, r_ok = tk[lo:hi], recip[lo:hi]  # (c, kk): R(p, k1) with a validity mask
        cand = r_set  # each member q of R(p, k1) is a candidate
        h_set, h_ok = topk[cand, :kh], half[cand]  # (c, kk, kh): R(q, k1 / 2)
        in_r = (h_set[..., None] == r_set[:, None, None, :]) & r_ok[:, None, None, :]
        inter = (in_r.any(axis=3) & h_ok).sum(axis=2)  # |R(q, k1/2) ∩ R(p, k1)|
        size = h_ok.sum(axis=2)
        accept = r_ok & (inter > 2.0 / 3.0 * size)  # the public code's strict test
        add = h_ok & accept[..., None]
        c = hi - lo
        rr = np.concatenate(
            [
                np.broadcast_to(ar[lo:hi, None], (c, kk))[r_ok],
                np.broadcast_to(ar[lo:hi, None, None], (c, kk, kh))[add],
            ]
        )
        cc = np.concatenate([r_set[r_ok], h_set[add]])
        key = np.unique(rr.astype(np.int64) * n + cc)  # sorted by row, then column
        pair_rows.append((key // n).astype(np.int32))
        pair_cols.append((key % n).astype(np.int32))
    prow = np.concatenate(pair_rows)
    pcol = np.concatenate(pair_cols)
    w = np.exp(-_pair_dist(feats, rowmax, prow, pcol))
    w /= np.bincount(prow, weights=w, minlength=n).astype(np.float32)[prow]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(prow, minlength=n), out=indptr[1:])
    return indptr, pcol, w.astype(np.float32)


def _expand(
    csr: tuple[np.ndarray, np.ndarray, np.ndarray], nbrs: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local query expansion of the encoding: row p becomes the mean of the rows of its k2
    nearest neighbours (equation 11), still sparse."""
    indptr, indices, data = csr
    k2 = nbrs.shape[1]
    counts = np.diff(indptr)
    out_rows: list[np.ndarray] = []
    out_cols: list[np.ndarray] = []
    out_vals: list[np.ndarray] = []
    avg = max(1, int(counts.mean()) if len(counts) else 1)
    rows = max(1, _CHUNK_ELEMS // (4 * k2 * avg))
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        src = nbrs[lo:hi].ravel()  # the neighbour rows to gather, k2 per target row
        tgt = np.repeat(np.arange(lo, hi), k2)
        cnt = counts[src]
        total = int(cnt.sum())
        seg = np.repeat(np.arange(len(src)), cnt)
        pos = indptr[src][seg] + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        key = tgt[seg].astype(np.int64) * n + indices[pos]
        uniq, inv = np.unique(key, return_inverse=True)
        vals = np.bincount(inv, weights=data[pos], minlength=len(uniq)) / k2
        out_rows.append((uniq // n).astype(np.int32))
        out_cols.append((uniq % n).astype(np.int32))
        out_vals.append(vals.astype(np.float32))
    prow = np.concatenate(out_rows)
    new_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(prow, minlength=n), out=new_ptr[1:])
    return new_ptr, np.concatenate(out_cols), np.concatenate(out_vals)


def _transpose(
    csr: tuple[np.ndarray, np.ndarray, np.ndarray], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC of the same matrix: for each column k, the rows with a non-zero there (the inverted
    index of the public code)."""
    indptr, indices, data = csr
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    colptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(indices, minlength=n), out=colptr[1:])
    return colptr, rows[order], data[order]


def _final(
    feats: np.ndarray,
    rowmax: np.ndarray,
    csr: tuple[np.ndarray, np.ndarray, np.ndarray],
    csc: tuple[np.ndarray, np.ndarray, np.ndarray],
    num_q: int,
    lambda_value: float,
    progress: Progress | None,
    *,
    gallery_start: int | None = None,
) -> np.ndarray:
    """``(1 - lambda) d_J + lambda d`` for query rows and gallery columns, in query chunks.

    Rows are ``0..num_q``, columns ``gallery_start..n`` (default ``num_q``: the gallery follows
    the queries; 0 scores the set against itself).

    ``Σ min(V_p, V_g)`` is accumulated over the non-zeros ``k`` of ``V_p`` and the rows ``g``
    that are non-zero in column ``k``; every row of ``V`` sums to 1, so
    ``Σ max = 2 - Σ min`` and ``d_J = 1 - m / (2 - m)``.
    """
    indptr, indices, data = csr
    colptr, crow, cval = csc
    n = len(feats)
    g0 = num_q if gallery_start is None else gallery_start
    num_g = n - g0
    # keep only the gallery rows of each column: queries are never scored against queries
    keep = crow >= g0
    entry_col = np.repeat(np.arange(n), np.diff(colptr))
    gptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(entry_col[keep], minlength=n), out=gptr[1:])
    del entry_col
    grow, gval = crow[keep] - g0, cval[keep]

    out = np.empty((num_q, num_g), np.float32)
    nnz_q = np.diff(indptr[: num_q + 1])
    col_cnt = np.diff(gptr)
    rows = max(1, _CHUNK_ELEMS // max(num_g, 1))
    lo = 0
    while lo < num_q:
        hi = min(lo + rows, num_q)
        # shrink the chunk until the (row, k, g) expansion stays under the element budget
        while hi - lo > 1:
            work = col_cnt[indices[indptr[lo] : indptr[hi]]].sum()
            if work <= 4 * _CHUNK_ELEMS:
                break
            hi = lo + max(1, (hi - lo) // 2)
        seg_rows = np.repeat(np.arange(hi - lo), nnz_q[lo:hi])
        ks = indices[indptr[lo] : indptr[hi]]
        vq = data[indptr[lo] : indptr[hi]]
        cnt = col_cnt[ks]
        total = int(cnt.sum())
        seg = np.repeat(np.arange(len(ks)), cnt)
        pos = gptr[ks][seg] + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        contrib = np.minimum(vq[seg], gval[pos])
        flat = seg_rows[seg].astype(np.int64) * num_g + grow[pos]
        m = np.bincount(flat, weights=contrib, minlength=(hi - lo) * num_g)
        m = m.reshape(hi - lo, num_g).astype(np.float32)
        jac = 1.0 - m / (2.0 - m)
        orig = _distance_rows(feats, lo, hi)[:, g0:] / rowmax[lo:hi, None]
        out[lo:hi] = (1.0 - lambda_value) * jac + lambda_value * orig
        if progress:
            progress("re-ranking: Jaccard distances", hi, num_q)
        lo = hi
    return out
