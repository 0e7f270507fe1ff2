"""Crop selection: per track, keep the best K crops to embed and to show as evidence.

Embedding every box of every frame is the most expensive thing ingestion could do and adds
little: consecutive frames look alike. A track's appearance is better summarised by a few
crops that are large, sharp, unoccluded, untruncated and of a person-like shape, spread over
the track's lifetime. Scores are simple and explainable on purpose (users see the evidence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from reid.boxes import box_intersection

IDEAL_ASPECT = 2.6  # height / width of a standing or walking person box
FULL_HEIGHT_PX = 128.0  # beyond this the embedder sees no more detail (its input is 256x128)


@dataclass(order=True)
class Candidate:
    score: float
    frame_idx: int
    box: tuple[float, float, float, float] = field(compare=False)
    image: np.ndarray = field(compare=False, repr=False)  # the BGR crop


def crop_quality(frame: np.ndarray, box: np.ndarray, others: np.ndarray) -> float:
    """A score in [0, 1]: size x sharpness x visibility x aspect."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    size = min(bh / FULL_HEIGHT_PX, 1.0)
    truncated = x0 <= 1 or y0 <= 1 or x1 >= w - 1 or y1 >= h - 1
    aspect = float(np.exp(-abs(np.log((bh / bw) / IDEAL_ASPECT))))
    overlap = 0.0
    if len(others):
        # in the boxes' own precision (float32 in ingestion), as crop scores always were
        inter = box_intersection(box, others, dtype=np.result_type(others, np.float32))
        overlap = float(inter.max() / (bw * bh))
    crop = frame[int(max(y0, 0)) : int(min(y1, h)), int(max(x0, 0)) : int(min(x1, w))]
    if crop.size == 0:
        return 0.0
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    sharp = float(cv2.Laplacian(gray, cv2.CV_32F).var())
    sharpness = sharp / (sharp + 60.0)  # saturates: beyond moderate sharpness it stops mattering
    return size * (0.4 + 0.6 * sharpness) * (1.0 - overlap) * aspect * (0.5 if truncated else 1.0)


class BestCrops:
    """Keeps, per track, the ``k`` best crops, at most one per ``min_gap``-frame window."""

    def __init__(self, k: int = 5, min_gap: int = 5) -> None:
        if k < 1 or min_gap < 1:
            raise ValueError("k and min_gap must be >= 1")
        self.k, self.min_gap = k, min_gap
        self._kept: dict[int, dict[int, Candidate]] = {}  # track -> window -> best candidate

    def offer(
        self, track_no: int, frame: np.ndarray, frame_idx: int, box: np.ndarray, others: np.ndarray
    ) -> None:
        score = crop_quality(frame, box, others)
        if score <= 0:
            return
        kept = self._kept.setdefault(track_no, {})
        window = frame_idx // self.min_gap
        if window in kept:
            if score <= kept[window].score:
                return
        elif len(kept) >= self.k:
            worst = min(kept, key=lambda w: kept[w].score)
            if score <= kept[worst].score:
                return
            del kept[worst]
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        crop = frame[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)].copy()
        kept[window] = Candidate(score, frame_idx, tuple(float(v) for v in box), crop)

    def pop(self, track_no: int) -> list[Candidate]:
        """The track's kept crops, best first; forgets the track."""
        return sorted(self._kept.pop(track_no, {}).values(), reverse=True)

    def tracks(self) -> list[int]:
        return list(self._kept)

    def get_state(self) -> dict[str, np.ndarray]:
        """The kept crops as named arrays (pixels concatenated), in the order they were kept:
        ties between equal scores go to the earlier one, so the order is part of the state."""
        rows = [(no, w, c) for no, kept in self._kept.items() for w, c in kept.items()]
        pixels = [c.image.reshape(-1) for _, _, c in rows]
        return {
            "tracks": np.array(list(self._kept), np.int64),
            "track": np.array([no for no, _, _ in rows], np.int64),
            "window": np.array([w for _, w, _ in rows], np.int64),
            "score": np.array([c.score for _, _, c in rows], np.float64),
            "frame": np.array([c.frame_idx for _, _, c in rows], np.int64),
            "box": np.array([c.box for _, _, c in rows], np.float64).reshape(-1, 4),
            "shape": np.array([c.image.shape for _, _, c in rows], np.int64).reshape(-1, 3),
            "pixels": np.concatenate(pixels) if pixels else np.zeros(0, np.uint8),
        }

    def set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from ``get_state``'s arrays."""
        self._kept = {int(no): {} for no in arrays["tracks"]}
        end = 0
        for i, no in enumerate(arrays["track"].tolist()):
            shape = tuple(arrays["shape"][i].tolist())
            size = int(np.prod(shape))
            image = arrays["pixels"][end : end + size].reshape(shape).copy()
            end += size
            box = tuple(float(v) for v in arrays["box"][i])
            score, frame = float(arrays["score"][i]), int(arrays["frame"][i])
            self._kept[no][int(arrays["window"][i])] = Candidate(score, frame, box, image)
