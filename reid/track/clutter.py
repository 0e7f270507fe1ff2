"""Static clutter learned from the footage: where a camera's motionless detections are scenery.

Why: a person detector fires on things that are shaped a little like a person and never move
(traffic cones, a sign post, a mannequin). On PETS S2L1 three traffic cones gave about 760 of the
1,600 false boxes of the whole clip: their boxes start tracks, and weak boxes on them feed the
tracks, which become long motionless "people". A fixed list of bad places would be per camera
work for every user; the footage itself says where they are, because scenery keeps the same box
and the same look for far longer than anybody stands still.

How (one ``ClutterMap`` per camera and video, fed every box of every frame):

* an **anchor** is a box where something was seen; a later box with IoU >= ``still_iou`` with it
  and an appearance within ``still_look`` (cosine distance to the anchor's running mean look) is
  the same thing seen again: a **hit** (at most one per anchor and frame). Any other box starts
  an anchor of its own; an anchor not hit for ``forget`` frames is dropped, so a walker's trail
  of anchors disappears behind them.
* an anchor with ``frames`` hits, present on at least half of the frames since it was first seen,
  becomes **scenery**: the box stood still, looking the same, for that long; unless a box of a
  track that had moved started it, hit it, or started an anchor overlapping it by ``NEAR`` x
  ``still_iou`` (a walker who stopped there: the synthetic world's groups stand 15-45 s, and a
  track lost and restarted while they stand is born motionless, so the restarted track's own
  motion does not protect them). Scenery is dropped too once nothing was seen there for
  ``frames`` frames (a parked car that left).
* the tracker (``reid.track.deepsort``, ``TrackerConfig.clutter``) lets a box on scenery (IoU
  >= ``still_iou`` with a scenery anchor) start no track; in mode "weak" a weak box there feeds
  only a track that **moved** (whose box centre left its first box by more than ``move`` x its
  height), in mode "all" no box there feeds a track that never moved. A person who walked in
  and stopped keeps their track. A track born on a cone that the detector scores weakly dies
  after ``max_age`` frames without boxes ("all": any cone), and no new one starts there.

What this cannot tell apart: a person who stood still, looking the same, for ``frames`` frames
from the start of the video. Mode "weak" (the default) leaves such a person's strong boxes
alone; mode "all" cuts their track (measured in docs/tracking.md).

The state is a few arrays (``get_state``/``set_state``), saved with the tracker's, so a resumed
video continues with the same map.
"""

from __future__ import annotations

import numpy as np

from reid.boxes import box_iou
from reid.errors import ReidTraceError
from reid.vectors import l2_normalize

Arrays = dict[str, np.ndarray]

# weight of a new look in an anchor's running mean look: slow, so lighting drifts in but a
# person passing in front of a cone for a few frames does not become its look
LOOK_RATE = 0.05
# a new anchor overlapping a walker's place by this share of ``still_iou`` is that place too
NEAR = 0.5


class ClutterMap:
    """Anchors of boxes seen again and again at the same place; ``observe`` says which of a
    frame's boxes lie on scenery. The same boxes in the same order give the same answers."""

    def __init__(self, *, still_iou: float, still_look: float, frames: int, forget: int) -> None:
        if not 0.0 < still_iou <= 1.0 or not 0.0 < still_look <= 2.0:
            raise ReidTraceError(
                f"clutter needs still_iou in (0, 1] and still_look in (0, 2], got {still_iou}, "
                f"{still_look}",
                hint="defaults: clutter_iou=0.6, clutter_look=0.2",
            )
        if frames < 1 or forget < 1:
            raise ReidTraceError(
                f"clutter needs frames >= 1 and forget >= 1, got {frames}, {forget}",
                hint="clutter_frames is how long a box must stand still to be scenery",
            )
        self.still_iou, self.still_look = float(still_iou), float(still_look)
        self.frames, self.forget = int(frames), int(forget)
        self.set_state({})

    def __len__(self) -> int:
        return len(self.box)

    @property
    def scenery_boxes(self) -> np.ndarray:
        """The scenery anchors' boxes (x0, y0, x1, y1), for reports and drawings."""
        return self.box[self.scenery]

    def on_scenery(self, xyxy: np.ndarray) -> np.ndarray:
        """Per box, whether it lies on scenery (IoU >= ``still_iou`` with a scenery anchor)."""
        xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        if not self.scenery.any() or not len(xyxy):
            return np.zeros(len(xyxy), bool)
        return (box_iou(xyxy, self.box[self.scenery]) >= self.still_iou).any(axis=1)

    def learn(
        self, frame_idx: int, xyxy: np.ndarray, looks: np.ndarray, brought: np.ndarray
    ) -> None:
        """Learn from one frame's boxes (after they were judged with ``on_scenery``: a box
        cannot make its own place scenery as it is judged). ``brought`` marks the boxes of
        tracks that moved: an anchor such a box starts is where a walker stopped, and never
        becomes scenery however long they stand."""
        xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        looks = l2_normalize(np.asarray(looks, np.float32).reshape(len(xyxy), -1))
        if len(self.box) and len(xyxy):
            iou = box_iou(xyxy, self.box)
            if self.look.shape[1] != looks.shape[1]:
                raise ReidTraceError(
                    f"clutter map: appearance of {looks.shape[1]} values, the map holds "
                    f"{self.look.shape[1]}",
                    hint="use one appearance cue for a whole video",
                )
            same = (iou >= self.still_iou) & (1.0 - looks @ self.look.T <= self.still_look)
        else:
            same = np.zeros((len(xyxy), len(self.box)), bool)
        hit = same.any(axis=0)
        self.brought |= (same & np.asarray(brought, bool)[:, None]).any(axis=0)
        self.last[hit] = frame_idx
        self.hits[hit] += 1
        for a in np.flatnonzero(hit):  # the mean look of this frame's boxes on the anchor
            mean = looks[same[:, a]].mean(axis=0)
            self.look[a] = l2_normalize((1 - LOOK_RATE) * self.look[a] + LOOK_RATE * mean)
        span = frame_idx - self.first + 1
        self.scenery |= (self.hits >= self.frames) & (2 * self.hits >= span) & ~self.brought
        new = ~same.any(axis=1)
        if new.any():
            n = int(new.sum())
            near = np.zeros(n, bool)  # overlaps where a walker stood (their box jitters)
            if self.brought.any():
                near = (box_iou(xyxy[new], self.box[self.brought]) >= NEAR * self.still_iou).any(1)
            if not len(self.look):
                self.look = np.zeros((0, looks.shape[1]), np.float32)
            added = {
                "box": xyxy[new],
                "look": looks[new],
                "first": np.full(n, frame_idx, np.int64),
                "last": np.full(n, frame_idx, np.int64),
                "hits": np.ones(n, np.int64),
                "scenery": np.zeros(n, bool),
                "brought": np.asarray(brought, bool)[new] | near,
            }
            old = self.get_state()
            self.set_state({k: np.concatenate([old[k], v]) for k, v in added.items()})
        unseen = frame_idx - self.last
        self._keep(np.where(self.scenery, unseen <= self.frames, unseen <= self.forget))

    def _keep(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        self.set_state({k: v[keep] for k, v in self.get_state().items()})

    def get_state(self) -> Arrays:
        """The anchors as named arrays (order kept: it decides nothing but stays the same)."""
        return {
            "box": self.box,
            "look": self.look,
            "first": self.first,
            "last": self.last,
            "hits": self.hits,
            "scenery": self.scenery,
            "brought": self.brought,
        }

    def set_state(self, arrays: Arrays) -> None:
        """Continue from ``get_state``'s arrays; ``{}`` = nothing learned yet."""
        self.box = np.asarray(arrays.get("box", np.zeros((0, 4))), np.float32).reshape(-1, 4)
        look = np.asarray(arrays.get("look", np.zeros((0, 0))), np.float32)
        self.look = look.reshape(len(self.box), -1) if len(self.box) else look.reshape(0, 0)
        self.first = np.asarray(arrays.get("first", np.zeros(0)), np.int64).copy()
        self.last = np.asarray(arrays.get("last", np.zeros(0)), np.int64).copy()
        self.hits = np.asarray(arrays.get("hits", np.zeros(0)), np.int64).copy()
        self.scenery = np.asarray(arrays.get("scenery", np.zeros(0)), bool).copy()
        self.brought = np.asarray(arrays.get("brought", np.zeros(0)), bool).copy()
        self.box, self.look = self.box.copy(), self.look.copy()
