"""``Detections``: the one thing that moves between stages (after supervision's).

Parallel numpy arrays, one row per person box, checked once in ``__post_init__``. Later stages
fill optional columns (``track_id``, ``embedding``) instead of inventing new types; any other
per-row data goes in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reid.boxes import xyxy_to_xywh


@dataclass
class Detections:
    """Person boxes of one or more frames of one camera."""

    xyxy: np.ndarray  # (n, 4) float32, pixel corners x1, y1, x2, y2
    confidence: np.ndarray  # (n,) float32
    frame_idx: np.ndarray  # (n,) int64, 0-based index of the source frame
    track_id: np.ndarray | None = None  # (n,) int64, set by a Tracker
    embedding: np.ndarray | None = None  # (n, d) float32, unit length, set by an Embedder
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    camera_id: str = ""

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.frame_idx = np.asarray(self.frame_idx, dtype=np.int64).reshape(-1)
        if self.track_id is not None:
            self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        if self.embedding is not None:
            self.embedding = np.asarray(self.embedding, dtype=np.float32)
        n = len(self.xyxy)
        cols = {
            "confidence": self.confidence,
            "frame_idx": self.frame_idx,
            "track_id": self.track_id,
            "embedding": self.embedding,
            **self.extra,
        }
        ragged = {k: len(v) for k, v in cols.items() if v is not None and len(v) != n}
        if ragged:
            raise ValueError(f"bad Detections: {n} boxes but row counts {ragged}")

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | int) -> Detections:
        """Row selection by boolean mask, index array or slice (always returns Detections)."""
        if isinstance(index, int | np.integer):
            index = np.array([index])

        def pick(col: np.ndarray | None) -> np.ndarray | None:
            return None if col is None else col[index]

        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            frame_idx=self.frame_idx[index],
            track_id=pick(self.track_id),
            embedding=pick(self.embedding),
            extra={k: v[index] for k, v in self.extra.items()},
            camera_id=self.camera_id,
        )

    @property
    def xywh(self) -> np.ndarray:
        """Boxes as (x, y, width, height), the MOTChallenge convention."""
        return xyxy_to_xywh(self.xyxy)

    @property
    def foot(self) -> np.ndarray:
        """(n, 2) bottom-centre of each box: where the person stands on the ground."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    @classmethod
    def empty(cls, camera_id: str = "") -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            frame_idx=np.zeros(0, np.int64),
            camera_id=camera_id,
        )

    @classmethod
    def merge(cls, parts: list[Detections]) -> Detections:
        """Concatenate; optional columns survive only when every part has them."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        cams = {p.camera_id for p in parts}
        if len(cams) > 1:
            raise ValueError(f"cannot merge Detections of different cameras {sorted(cams)}")

        def cat(cols: list[np.ndarray | None]) -> np.ndarray | None:
            return None if any(c is None for c in cols) else np.concatenate(cols)

        keys = set.intersection(*(set(p.extra) for p in parts))
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            frame_idx=np.concatenate([p.frame_idx for p in parts]),
            track_id=cat([p.track_id for p in parts]),
            embedding=cat([p.embedding for p in parts]),
            extra={k: np.concatenate([p.extra[k] for p in parts]) for k in sorted(keys)},
            camera_id=parts[0].camera_id,
        )
