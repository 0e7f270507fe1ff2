"""Per-camera tracking with DeepSORT (Kalman motion + appearance, Hungarian assignment).

Uses the ``deep-sort-realtime`` tracker as is (Kalman filter, cascade matching, scipy-free
linear assignment) and adapts it to ``Detections``: appearance vectors come from the
detections' ``embedding`` column (or a colour histogram when it is empty), track ids become
integers, and the boxes of a track's tentative first frames are emitted once the track is
confirmed, so a track's first frames are not lost.

With ``high_score`` set, association runs in two stages (after ByteTrack, Zhang et al. 2022):
boxes scoring at least ``high_score`` go through DeepSORT; weaker boxes (the detector is asked
for them with a lower threshold) can only continue a confirmed track that DeepSORT left
unmatched in this frame, by IoU with its predicted box. A partly hidden or badly lit person
whom the detector scores 0.15-0.35 then keeps their track instead of breaking it, while weak
boxes on clutter never start one. deep-sort-realtime has no such stage, hence the few lines
here.

With ``max_gap`` > 0, a confirmed track that is matched again after missing up to ``max_gap``
frames (the detector lost the person behind a post, or ``detect_stride`` skipped frames) gets
boxes for the frames in between, linearly interpolated and marked with confidence 0 (no detector
box), as offline trackers do (e.g. ByteTrack's and StrongSORT's gap interpolation): the
stored track then covers every frame the person was followed, which trajectories and contact
exposure times count on.

With ``overlap_cover`` < 1, a box more than that fraction covered by another box of the frame
moves its track but adds nothing to the track's appearance gallery (``reid.track.gallery``):
an overlapped box's appearance is partly the other person's, and in the gallery it lets the
track take that person after they part.

With ``homography`` (the camera's image->ground map, metres), each track also follows its foot
point on the ground and association weighs the ground distance (``reid.track.ground``): with
perfect boxes this removes most identity swaps inside groups (``docs/tracking.md``).
"""

from __future__ import annotations

import numpy as np

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.geometry import as_homography


def _overlapped(xyxy: np.ndarray, cover: float) -> frozenset[int]:
    """Indices of boxes of which more than ``cover`` of the area lies inside one other box."""
    from reid.boxes import box_area, box_intersection

    if len(xyxy) < 2 or cover >= 1.0:
        return frozenset()
    inter = box_intersection(xyxy, xyxy)
    np.fill_diagonal(inter, 0.0)
    covered = inter.max(axis=1) / np.maximum(box_area(xyxy), 1e-9)
    return frozenset(np.flatnonzero(covered > cover).tolist())


class DeepSortTracker:
    """``Tracker`` protocol: ``update(dets)`` returns the tracked boxes with ``track_id`` set.

    The returned rows may include earlier frames (a newly confirmed track's tentative boxes);
    each row keeps its own ``frame_idx``.

    Ground association (only with ``homography``): ``image_height`` tells which boxes are cut
    by the frame's bottom (their foot point is not the feet); ``fps`` scales the walking-speed
    priors; a box of the track's shape within ``ground_radius`` metres of its predicted feet may
    join it even outside the image gate (loose, because a group's formation turning with it
    moves its members up to ~1 m in one frame); ``ground_weight`` times the ground Mahalanobis
    distance (capped at ``ground_gate``, chi-square units, then scaled to 1) is added to the
    appearance cost; ``pixel_noise`` is the foot point's error as a fraction of the box height.
    """

    def __init__(
        self,
        *,
        max_age: int = 30,
        n_init: int = 3,
        max_cosine_distance: float = 0.3,
        max_iou_distance: float = 0.7,
        nn_budget: int | None = 50,
        high_score: float = 0.0,
        second_iou: float = 0.5,
        homography: np.ndarray | list | None = None,
        image_height: int | None = None,
        fps: float = 10.0,
        ground_weight: float = 0.3,
        ground_gate: float = 9.21,
        ground_radius: float = 1.5,
        pixel_noise: float = 0.05,
        max_gap: int = 0,
        overlap_cover: float = 1.0,
    ) -> None:
        if not 0.0 <= high_score <= 1.0 or not 0.0 < second_iou <= 1.0:
            raise ReidTraceError(
                f"high_score must be in [0, 1] and second_iou in (0, 1], got {high_score}, "
                f"{second_iou}",
                hint="high_score is the detector's usual threshold (0 = one stage); second_iou 0.5",
            )
        if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
            raise ReidTraceError(
                f"max_gap must be a whole number of frames >= 0, got {max_gap!r}",
                hint="0 = no interpolation; 10 fills gaps of up to a second at 10 fps",
            )
        if not 0.0 <= overlap_cover <= 1.0:
            raise ReidTraceError(
                f"overlap_cover must be in [0, 1], got {overlap_cover}",
                hint="0.5: boxes more than half covered by another add no appearance; 1 = off",
            )
        self.overlap_cover = float(overlap_cover)
        self.max_gap = max_gap
        self.high_score = float(high_score)
        self.second_iou = float(second_iou)
        if max_age < 1 or n_init < 1:
            raise ReidTraceError(
                f"tracker needs max_age >= 1 and n_init >= 1, got {max_age}, {n_init}",
                hint="defaults: max_age=30 frames, n_init=3",
            )
        if not 0 < max_cosine_distance <= 2:
            raise ReidTraceError(
                f"max_cosine_distance must be in (0, 2], got {max_cosine_distance}", hint="try 0.3"
            )
        self._ground: dict | None = None
        if homography is not None:
            positive = (fps, ground_gate, ground_radius, pixel_noise)
            if min(positive) <= 0 or ground_weight < 0:
                raise ReidTraceError(
                    f"ground association needs fps, ground_gate, ground_radius and pixel_noise "
                    f"> 0 and ground_weight >= 0, got {positive} and {ground_weight}",
                    hint="defaults: the video's fps, ground_gate=9.21 (chi-square 99%, 2 dof), "
                    "ground_radius=1.5 m, pixel_noise=0.05 (of the box height), ground_weight=0.3",
                )
            if image_height is not None and image_height < 1:
                raise ReidTraceError(
                    f"image_height must be >= 1, got {image_height}",
                    hint="the frame height in pixels, or None",
                )
            self._ground = {
                "homography": as_homography(homography, name="tracker homography"),
                "image_height": image_height,
                "fps": float(fps),
                "pixel_noise": float(pixel_noise),
                "ground_weight": float(ground_weight),
                "ground_gate": float(ground_gate),
                "ground_radius": float(ground_radius),
            }
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

            from reid.track.gallery import CleanGalleryTracker
            from reid.track.ground import GroundDeepSort, GroundMotion
        except ImportError as err:  # pragma: no cover - install problem
            raise ReidTraceError(
                "the DeepSORT tracker is not installed",
                hint="pip install --no-deps deep-sort-realtime==1.3.2",
            ) from err
        self._ds = DeepSort(embedder=None, **self._args)
        args = {k: self._args[k] for k in ("max_iou_distance", "max_age", "n_init")}
        if getattr(self, "overlap_cover", 1.0) < 1.0:  # old pickles: galleries as before
            self._ds.tracker = CleanGalleryTracker(self._ds.tracker.metric, **args)
        ground = getattr(self, "_ground", None)  # old pickles: image only
        if ground is not None:
            g = dict(ground)
            motion = GroundMotion(
                g.pop("homography"),
                fps=g.pop("fps"),
                image_height=g.pop("image_height"),
                pixel_noise=g.pop("pixel_noise"),
            )
            self._ds.tracker = GroundDeepSort(self._ds.tracker.metric, motion, **g, **args)
        self._ids: dict[str, int] = {}
        self._pending: dict[str, list[tuple[Detections, int]]] = {}
        self._last: dict[str, tuple[int, np.ndarray]] = {}  # key -> last emitted frame, box

    def _int_id(self, key: str) -> int:
        if key not in self._ids:
            self._ids[key] = len(self._ids) + 1
        return self._ids[key]

    def _second_stage(self, dets: Detections, weak: list[int]) -> None:
        """Weak boxes continue confirmed tracks DeepSORT left unmatched (IoU, Hungarian)."""
        from deep_sort_realtime.deep_sort.detection import Detection
        from scipy.optimize import linear_sum_assignment

        from reid.boxes import box_iou

        ds = self._ds.tracker
        lost = [t for t in ds.tracks if t.is_confirmed() and t.time_since_update >= 1]
        if not lost:
            return
        predicted = np.array([t.to_tlbr() for t in lost], np.float32)
        iou = box_iou(predicted, dets.xyxy[weak])
        for r, c in zip(*linear_sum_assignment(-iou), strict=True):
            if iou[r, c] < self.second_iou:
                continue
            i = weak[c]
            x0, y0, x1, y1 = (float(v) for v in dets.xyxy[i])
            box = Detection([x0, y0, x1 - x0, y1 - y0], float(dets.confidence[i]),
                            dets.embedding[i], class_name="person", others=i)  # fmt: skip
            if hasattr(ds, "annotate"):  # ground association
                ds.annotate(box)
            if hasattr(ds, "mark"):
                ds.mark(box)
            lost[r].update(ds.kf, box)

    def _fill_gap(self, key: str, one: Detections) -> Detections | None:
        """Boxes for the frames a confirmed track missed before ``one`` (linear, confidence 0)."""
        prev = self._last.get(key)  # update() creates _last for old pickles
        if prev is None or not getattr(self, "max_gap", 0):
            return None
        f0, box0 = prev
        f1 = int(one.frame_idx[0])
        n = f1 - f0 - 1
        if n < 1 or n > self.max_gap:
            return None
        w = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[:, None]
        out = one[np.zeros(n, np.int64)]  # copies every column (embedding, extra) of ``one``
        out.xyxy = ((1 - w) * box0[None, :] + w * one.xyxy[0][None, :]).astype(np.float32)
        out.confidence = np.zeros(n, np.float32)
        out.frame_idx = np.arange(f0 + 1, f1, dtype=np.int64)
        return out

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
        valid = [r[0][2] > 0 and r[0][3] > 0 for r in raw]
        strong = dets.confidence >= getattr(self, "high_score", 0.0)  # old pickles: one stage
        keep = [i for i, ok in enumerate(valid) if ok and strong[i]]
        if hasattr(self._ds.tracker, "set_frame"):  # ground association
            self._ds.tracker.set_frame(dets.xyxy)
        if hasattr(self._ds.tracker, "mark"):  # clean galleries: every box of the frame counts
            self._ds.tracker.overlapped = _overlapped(dets.xyxy, self.overlap_cover)
        tracks = self._ds.update_tracks(
            [raw[i] for i in keep],
            embeds=[dets.embedding[i] for i in keep],
            others=keep,
        )
        weak = [i for i, ok in enumerate(valid) if ok and not strong[i]]
        if weak:
            self._second_stage(dets, weak)
        rows: list[Detections] = []
        ids: list[int] = []
        last = self.__dict__.setdefault("_last", {})  # old pickles: no interpolation state
        for t in tracks:
            if t.time_since_update != 0 or t.others is None:
                continue  # not matched to a detection this frame
            key = str(t.track_id)
            one = dets[np.array([t.others])]
            if not t.is_confirmed():
                self._pending.setdefault(key, []).append((one, 0))
                continue
            track_no = self._int_id(key)
            # the tentative boxes (once confirmed), then this one, each after its gap's fill
            for box in [old for old, _ in self._pending.pop(key, [])] + [one]:
                gap = self._fill_gap(key, box)
                for part in (gap, box) if gap is not None else (box,):
                    rows.append(part)
                    ids += [track_no] * len(part)
                last[key] = (int(box.frame_idx[0]), box.xyxy[0].copy())
        # drop the buffers of tentative tracks and the last boxes of tracks that died
        alive = {str(t.track_id) for t in tracks}
        for key in [k for k in self._pending if k not in alive]:
            del self._pending[key]
        for key in [k for k in last if k not in alive]:
            del last[key]
        if not rows:
            out = Detections.empty(dets.camera_id)
            out.track_id = np.zeros(0, np.int64)
            return out
        out = Detections.merge(rows)
        out.track_id = np.asarray(ids, np.int64)
        out.camera_id = dets.camera_id
        return out
