"""Per-camera tracking with DeepSORT (Kalman motion + appearance, Hungarian assignment).

Uses the ``deep-sort-realtime`` tracker as is (Kalman filter, cascade matching, scipy-free
linear assignment) and adapts it to ``Detections``: appearance vectors come from the
detections' ``embedding`` column (or a colour histogram when it is empty), track ids become
integers, and the boxes of a track's tentative first frames are emitted once the track is
confirmed, so a track's first frames are not lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reid.detections import Detections
from reid.errors import ReidTraceError


@dataclass
class _Pending:
    rows: list[int] = field(default_factory=list)  # indices into the buffered detections


class DeepSortTracker:
    """``Tracker`` protocol: ``update(dets)`` returns the tracked boxes with ``track_id`` set.

    The returned rows may include earlier frames (a newly confirmed track's tentative boxes);
    each row keeps its own ``frame_idx``.
    """

    def __init__(
        self,
        *,
        max_age: int = 30,
        n_init: int = 3,
        max_cosine_distance: float = 0.3,
        max_iou_distance: float = 0.7,
        nn_budget: int | None = 50,
    ) -> None:
        if max_age < 1 or n_init < 1:
            raise ReidTraceError(
                f"tracker needs max_age >= 1 and n_init >= 1, got {max_age}, {n_init}",
                hint="defaults: max_age=30 frames, n_init=3",
            )
        if not 0 < max_cosine_distance <= 2:
            raise ReidTraceError(
                f"max_cosine_distance must be in (0, 2], got {max_cosine_distance}", hint="try 0.3"
            )
        self._args = {
            "max_age": max_age,
            "n_init": n_init,
            "max_cosine_distance": max_cosine_distance,
            "max_iou_distance": max_iou_distance,
            "nn_budget": nn_budget,
        }
        self.reset()

    def reset(self) -> None:
        try:
            from deep_sort_realtime.deepsort_tracker import DeepSort
        except ImportError as err:  # pragma: no cover - install problem
            raise ReidTraceError(
                "the DeepSORT tracker is not installed",
                hint="pip install --no-deps deep-sort-realtime==1.3.2",
            ) from err
        self._ds = DeepSort(embedder=None, **self._args)
        self._ids: dict[str, int] = {}
        self._pending: dict[str, list[tuple[Detections, int]]] = {}

    def _int_id(self, key: str) -> int:
        if key not in self._ids:
            self._ids[key] = len(self._ids) + 1
        return self._ids[key]

    def update(self, detections: Detections) -> Detections:
        """Feed one frame's detections (all with the same ``frame_idx``)."""
        dets = detections
        if len(dets) and len(np.unique(dets.frame_idx)) > 1:
            raise ValueError("DeepSortTracker.update takes one frame at a time")
        if dets.embedding is None:
            raise ValueError("DeepSortTracker needs dets.embedding (appearance) to be filled")
        raw = [
            ([float(x0), float(y0), float(x1 - x0), float(y1 - y0)], float(c), "person")
            for (x0, y0, x1, y1), c in zip(dets.xyxy, dets.confidence, strict=True)
        ]
        keep = [i for i, r in enumerate(raw) if r[0][2] > 0 and r[0][3] > 0]
        tracks = self._ds.update_tracks(
            [raw[i] for i in keep],
            embeds=[dets.embedding[i] for i in keep],
            others=keep,
        )
        rows: list[Detections] = []
        ids: list[int] = []
        for t in tracks:
            if t.time_since_update != 0 or t.others is None:
                continue  # not matched to a detection this frame
            key = str(t.track_id)
            one = dets[np.array([t.others])]
            if not t.is_confirmed():
                self._pending.setdefault(key, []).append((one, 0))
                continue
            track_no = self._int_id(key)
            for old, _ in self._pending.pop(key, []):
                rows.append(old)
                ids.append(track_no)
            rows.append(one)
            ids.append(track_no)
        # drop the buffers of tentative tracks that died
        alive = {str(t.track_id) for t in tracks}
        for key in [k for k in self._pending if k not in alive]:
            del self._pending[key]
        if not rows:
            out = Detections.empty(dets.camera_id)
            out.track_id = np.zeros(0, np.int64)
            return out
        out = Detections.merge(rows)
        out.track_id = np.asarray(ids, np.int64)
        out.camera_id = dets.camera_id
        return out
