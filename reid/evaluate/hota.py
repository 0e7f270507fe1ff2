"""HOTA (Higher Order Tracking Accuracy), implemented here from its definition.

Luiten et al., "HOTA: A Higher Order Metric for Evaluating Multi-Object Tracking", IJCV 2021.
For each localisation threshold alpha in 0.05, 0.10, ..., 0.95:

- per frame, truth and tracked boxes are matched one-to-one (Hungarian) on IoU >= alpha,
  preferring pairs whose identities agree over the whole sequence: the matching maximises
  IoU x global alignment, where the alignment of truth id g and tracked id t is the soft
  count of their overlap over all frames, ``A(g, t) = P / (n_g + n_t - P)`` with ``P`` the sum
  over frames of ``IoU / (row sum + column sum - IoU)`` (the paper's matching rule, as its
  authors' reference code computes it);
- DetA = TP / (TP + FN + FP);
- AssA = the mean over true positives c of ``TPA(c) / (TPA(c) + FNA(c) + FPA(c))``: for the
  pair (g, t) of c, how many frames g and t are matched, against the frames either is seen;
- HOTA_alpha = sqrt(DetA x AssA).

HOTA, DetA and AssA are the means over the 19 thresholds. Why not a library: motmetrics has no
HOTA, and the PyPI ``trackeval`` (a repackaged fork of the authors' TrackEval) pins
``opencv-python``, which clashes with the ``opencv-python-headless`` this project uses, plus
matplotlib and pycocotools. Installed aside without its dependencies, its HOTA gave the same
numbers as this module (to the last digit) on random sequences with misses, false boxes and
identity swaps.

Per-threshold counts are kept (``HotaCounts``) so that several sequences pool the way the
reference code combines them: TP, FN, FP and the AssA numerator summed per threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["ALPHAS", "HotaCounts", "hota_counts", "hota_scores"]

ALPHAS = np.arange(0.05, 0.99, 0.05)
"""The localisation thresholds: 0.05, 0.10, ..., 0.95."""

_EPS = np.finfo(float).eps
Frame = tuple[np.ndarray, np.ndarray, np.ndarray]  # truth ids, tracked ids, IoU (n_gt, n_hyp)


@dataclass(frozen=True)
class HotaCounts:
    """Per-threshold sums of one or more sequences, from which the scores follow."""

    tp: np.ndarray  # (len(ALPHAS),) true positives
    fn: np.ndarray
    fp: np.ndarray
    assa_sum: np.ndarray  # sum over true positives of their association accuracy

    def __add__(self, other: HotaCounts) -> HotaCounts:
        return HotaCounts(
            self.tp + other.tp,
            self.fn + other.fn,
            self.fp + other.fp,
            self.assa_sum + other.assa_sum,
        )


def hota_scores(counts: HotaCounts) -> dict[str, float]:
    """HOTA, DetA and AssA (means over the thresholds) of ``counts``; 0 without any match."""
    tp, fn, fp = counts.tp, counts.fn, counts.fp
    deta = tp / np.maximum(1.0, tp + fn + fp)
    assa = counts.assa_sum / np.maximum(1.0, tp)
    hota = np.sqrt(deta * assa)
    return {"hota": float(hota.mean()), "deta": float(deta.mean()), "assa": float(assa.mean())}


def hota_counts(frames: Sequence[Frame]) -> HotaCounts:
    """HOTA's per-threshold counts of one sequence, given per frame the truth ids, the tracked
    ids and their IoU matrix (ignored truth and the boxes on it already removed)."""
    gt_ids = np.unique(np.concatenate([f[0] for f in frames] or [np.zeros(0, np.int64)]))
    hyp_ids = np.unique(np.concatenate([f[1] for f in frames] or [np.zeros(0, np.int64)]))
    n_alpha = len(ALPHAS)
    zeros = np.zeros(n_alpha)
    n_gt = sum(len(f[0]) for f in frames)
    n_hyp = sum(len(f[1]) for f in frames)
    if n_gt == 0 or n_hyp == 0:
        return HotaCounts(zeros.copy(), zeros + n_gt, zeros + n_hyp, zeros.copy())
    # ids as row/column numbers of the id-pair tables
    frames = [(np.searchsorted(gt_ids, g), np.searchsorted(hyp_ids, h), s) for g, h, s in frames]
    gt_count = np.zeros(len(gt_ids))
    hyp_count = np.zeros(len(hyp_ids))
    overlap = np.zeros((len(gt_ids), len(hyp_ids)))
    for g, h, sim in frames:
        gt_count[g] += 1
        hyp_count[h] += 1
        if sim.size:
            soft = sim / (sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim + _EPS)
            overlap[g[:, None], h[None, :]] += soft
    alignment = overlap / (gt_count[:, None] + hyp_count[None, :] - overlap)

    tp = np.zeros(n_alpha)
    matches = np.zeros((n_alpha, len(gt_ids), len(hyp_ids)))
    for g, h, sim in frames:
        if not sim.size:
            continue
        score = alignment[g[:, None], h[None, :]] * sim
        rows, cols = linear_sum_assignment(-score)
        s = sim[rows, cols]
        for a, alpha in enumerate(ALPHAS):
            ok = s >= alpha - _EPS
            tp[a] += ok.sum()
            matches[a, g[rows[ok]], h[cols[ok]]] += 1
    assa_sum = np.zeros(n_alpha)
    for a in range(n_alpha):
        m = matches[a]
        pair_acc = m / np.maximum(1.0, gt_count[:, None] + hyp_count[None, :] - m)
        assa_sum[a] = (m * pair_acc).sum()
    return HotaCounts(tp, n_gt - tp, n_hyp - tp, assa_sum)
