"""The ReID accuracy protocol everyone scores with (Market-1501 rules), numpy only.

One array-in function, like torchreid's ``metrics/rank.py``, so that synthetic data, Market-1501,
the compressed models and the CI metrics table are all scored by the same code:

- ``distmat[i, j]`` is the distance from query ``i`` to gallery entry ``j``; smaller = more alike.
- For each query, gallery entries with the same identity *and* the same camera are ignored: finding
  the same person in the same camera is tracking, not re-identification.
- Gallery entries with identity ``-1`` (junk: bad boxes, body parts) are ignored for every query.
- Identity ``0`` (distractors: boxes that are not one of the labelled people) is an ordinary
  non-matching entry; a query whose identity is ``0`` or ``-1`` has no match by definition.
- Queries without any valid match are skipped and not counted in ``num_query``.

AP is computed exactly as torchreid computes it (mean over the correct matches of the precision at
each of them); mINP follows Ye et al., "Deep Learning for Person Re-identification: A Survey and
Outlook" (AGW): INP = number of correct matches / rank of the hardest (last) correct match.
Queries are processed in chunks so a 20k x 20k distance matrix needs memory for a few hundred
rows at a time, never a full (num_query, num_gallery) index matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid.errors import ReidTraceError
from reid.vectors import l2_normalize

__all__ = ["RankResult", "cosine_distmat", "evaluate_rank"]

JUNK_PID = -1
"""Identity of junk gallery entries, ignored for every query."""

_CHUNK = 256
"""Queries per chunk: bounds the (chunk, num_gallery) temporaries to ~40 MB each at 20k gallery."""


@dataclass(frozen=True, eq=False)
class RankResult:
    """Scores of one evaluation; fractions in [0, 1] (``as_percent`` for reports)."""

    mAP: float
    rank1: float
    rank5: float
    rank10: float
    mINP: float
    cmc: np.ndarray  # (max_rank,) float64; cmc[k] = fraction of queries matched within top k+1
    num_query: int  # queries that had at least one valid match (the ones scored)
    num_gallery: int  # gallery entries given, junk included

    def as_percent(self) -> dict[str, float | int]:
        """The JSON shape the CLI, the metrics table and the API report (percent, 4 decimals)."""
        return {
            "mAP": round(100.0 * self.mAP, 4),
            "rank1": round(100.0 * self.rank1, 4),
            "rank5": round(100.0 * self.rank5, 4),
            "rank10": round(100.0 * self.rank10, 4),
            "mINP": round(100.0 * self.mINP, 4),
            "num_query": self.num_query,
            "num_gallery": self.num_gallery,
        }


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> RankResult:
    """Score a query-to-gallery distance matrix with the Market-1501 protocol.

    ``cmc`` always has ``max_rank`` entries: when fewer gallery entries are kept for a query, its
    curve stays at 1 past its first match, which is what CMC means (torchreid instead shortens
    the curve, which only happens for galleries smaller than ``max_rank``). Rank-1/5/10 do not
    depend on ``max_rank``. Ties in distance keep gallery order (stable sort), so results do
    not depend on the sorting algorithm.

    Raises ``ValueError`` for arrays of the wrong dimensionality (a bug in the caller) and
    ``ReidTraceError`` for empty inputs, label counts that disagree with the matrix, non-finite
    distances, or when no query has a valid match.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids).reshape(-1), np.asarray(g_pids).reshape(-1)
    q_camids, g_camids = np.asarray(q_camids).reshape(-1), np.asarray(g_camids).reshape(-1)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {distmat.shape}")
    if not isinstance(max_rank, int | np.integer) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive int, got {max_rank!r}")
    num_q, num_g = distmat.shape
    if num_q == 0 or num_g == 0:
        raise ReidTraceError(
            f"nothing to evaluate: {num_q} queries and {num_g} gallery entries",
            hint="check that the query and gallery folders hold images and were all embedded",
        )
    lengths = {
        "q_pids": len(q_pids),
        "q_camids": len(q_camids),
        "g_pids": len(g_pids),
        "g_camids": len(g_camids),
    }
    expected = {"q_pids": num_q, "q_camids": num_q, "g_pids": num_g, "g_camids": num_g}
    wrong = {k: v for k, v in lengths.items() if v != expected[k]}
    if wrong:
        raise ReidTraceError(
            f"labels do not match the distance matrix of shape {distmat.shape}: lengths {wrong}",
            hint="features and labels must come from the same image lists, in the same order",
        )

    ap = np.zeros(num_q, np.float64)
    inp = np.zeros(num_q, np.float64)
    first = np.zeros(num_q, np.int64)  # 1-based rank of the first correct match among kept
    valid = np.zeros(num_q, bool)
    for lo in range(0, num_q, _CHUNK):
        hi = min(lo + _CHUNK, num_q)
        block = distmat[lo:hi]
        if not np.isfinite(block).all():
            row = lo + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise ReidTraceError(
                f"distance matrix has NaN or infinite values (first in query row {row})",
                hint="check the embeddings: a failed crop or a zero feature vector gives NaN",
            )
        sl = slice(lo, hi)
        ap[sl], inp[sl], first[sl], valid[sl] = _score_chunk(
            block, q_pids[sl], g_pids, q_camids[sl], g_camids
        )

    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ReidTraceError(
            f"no query has a valid match in the gallery ({num_q} queries, {num_g} gallery "
            "entries; same-camera matches and junk -1 entries do not count)",
            hint="query identities must appear in the gallery under another camera; "
            "check that query and gallery come from the same dataset split",
        )
    first = first[valid]
    # cmc[k] = fraction of valid queries whose first correct match is within the top k + 1
    hist = np.bincount(np.minimum(first, max_rank + 1) - 1, minlength=max_rank + 1)
    cmc = np.cumsum(hist[:max_rank]) / num_valid
    return RankResult(
        mAP=float(ap[valid].mean()),
        rank1=float(np.mean(first <= 1)),
        rank5=float(np.mean(first <= 5)),
        rank10=float(np.mean(first <= 10)),
        mINP=float(inp[valid].mean()),
        cmc=cmc.astype(np.float64),
        num_query=num_valid,
        num_gallery=num_g,
    )


def _score_chunk(
    block: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AP, INP, first-match rank and validity for a block of queries (vectorised over the block).

    Instead of deleting ignored entries per query (torchreid's loop), ranks are counted among the
    kept entries with a cumulative sum, which gives the same numbers without ragged arrays.
    """
    order = np.argsort(block, axis=1, kind="stable")
    gp = g_pids[order]
    match = (gp == q_pids[:, None]) & (q_pids[:, None] > 0)  # 0 and -1 never match
    ignore = (gp == JUNK_PID) | (match & (g_camids[order] == q_camids[:, None]))
    del order
    keep = ~ignore
    good = match & keep
    rank = np.cumsum(keep, axis=1, dtype=np.int64)  # 1-based rank among kept, at kept entries
    hits = np.cumsum(good, axis=1, dtype=np.int64)  # correct matches so far
    num_rel = hits[:, -1]
    valid = num_rel > 0
    rows = np.arange(len(block))
    # precision at each correct match, averaged over the correct matches (torchreid's AP);
    # only the (few) correct entries are touched, so no float (chunk, num_gallery) temporary
    r, c = np.nonzero(good)
    prec_sum = np.bincount(r, weights=hits[r, c] / rank[r, c], minlength=len(block))
    first = rank[rows, np.argmax(good, axis=1)]
    last = rank[rows, good.shape[1] - 1 - np.argmax(good[:, ::-1], axis=1)]
    safe = np.maximum(num_rel, 1)
    ap = np.where(valid, prec_sum / safe, 0.0)
    inp = np.where(valid, num_rel / np.maximum(last, 1), 0.0)
    return ap, inp, np.where(valid, first, 0), valid


def unit_pair(query_feats: np.ndarray, gallery_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery features as float32 unit rows (zero rows stay zero), checked to match."""
    q = np.asarray(query_feats, dtype=np.float32)
    g = np.asarray(gallery_feats, dtype=np.float32)
    if q.ndim != 2 or g.ndim != 2:
        raise ValueError(f"features must be 2-D (n, dim), got {q.shape} and {g.shape}")
    if q.shape[1] != g.shape[1]:
        raise ReidTraceError(
            f"query features have dim {q.shape[1]} but gallery features have dim {g.shape[1]}",
            hint="embed query and gallery with the same model",
        )
    return l2_normalize(q), l2_normalize(g)


def cosine_distmat(query_feats: np.ndarray, gallery_feats: np.ndarray) -> np.ndarray:
    """``1 - cos`` between every query and gallery feature, float32 in [0, 2].

    Features are L2-normalised here (zero vectors stay zero and get distance 1 to everything),
    so raw embeddings and unit-length ones give the same matrix.
    """
    q, g = unit_pair(query_feats, gallery_feats)
    dist = 1.0 - q @ g.T
    return np.asarray(dist, dtype=np.float32)
