import numpy as np

from reid.track.selection import BestCrops, crop_quality


def _frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (240, 320, 3), dtype=np.uint8)


def test_quality_prefers_large_unoccluded_untruncated_boxes() -> None:
    f = _frame()
    none = np.zeros((0, 4))
    big = crop_quality(f, np.array([100, 20, 140, 124]), none)
    small = crop_quality(f, np.array([100, 20, 110, 46]), none)
    hidden = crop_quality(f, np.array([100, 20, 140, 124]), np.array([[95, 15, 145, 130]]))
    cut = crop_quality(f, np.array([0, 20, 40, 124]), none)
    assert big > small and big > hidden and big > cut
    assert 0 <= hidden < big <= 1


def test_best_crops_keeps_k_spread_out() -> None:
    sel = BestCrops(k=3, min_gap=5)
    f = _frame(1)
    none = np.zeros((0, 4))
    for k in range(40):
        h = 40 + k  # later frames are larger, hence better
        sel.offer(7, f, k, np.array([100, 10, 100 + h / 2.6, 10 + h]), none)
    kept = sel.pop(7)
    assert len(kept) == 3
    frames = sorted(c.frame_idx for c in kept)
    assert len({f // 5 for f in frames}) == 3  # one per 5-frame window
    assert kept[0].score >= kept[-1].score and frames[-1] >= 35
    assert kept[0].image.ndim == 3 and sel.pop(7) == []
