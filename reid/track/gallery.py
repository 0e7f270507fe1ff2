"""Appearance galleries kept clean of overlapped boxes (deep-sort-realtime 1.3.2 subclasses).

DeepSORT adds the appearance vector of every box a track is matched to to that track's
gallery, and later matches by the nearest vector in it. When two people overlap in the image,
the box of one holds much of the other, so its vector (a colour histogram or a ReID embedding)
describes both; once in the gallery it lets the track take the other person's box after they
part, which is how crossings and groups swap identities. Here a box more than
``overlap_cover`` covered by another box of the same frame still moves its track (Kalman update)
but adds nothing to the gallery, as trackers that gate appearance updates on occlusion do
(e.g. the occlusion-aware updates of OC-SORT/Deep OC-SORT). Measured on four synthetic worlds
(``docs/tracking.md``, session 5): IDF1 up on all four with NanoDet and with the oracle boxes.
"""

from __future__ import annotations

from typing import Any

from deep_sort_realtime.deep_sort.track import Track
from deep_sort_realtime.deep_sort.tracker import Tracker


class CleanGalleryTrack(Track):
    """A track that takes no appearance vector from a box marked ``overlapped``."""

    def update(self, kf: Any, detection: Any) -> None:
        kept = list(self.features)
        super().update(kf, detection)
        if getattr(detection, "overlapped", False) and kept:
            self.features = kept  # what the tracker hands the gallery after this frame


class CleanGalleryTracker(Tracker):
    """deep-sort-realtime's tracker that marks the frame's overlapped boxes before updating.

    ``overlapped`` holds the indices (``Detection.others``) of this frame's overlapped boxes;
    the caller sets it before each ``update``.
    """

    def __init__(self, metric: Any, **kwargs: Any) -> None:
        kwargs.setdefault("override_track_class", CleanGalleryTrack)
        super().__init__(metric, **kwargs)
        self.overlapped: frozenset[int] = frozenset()

    def mark(self, detection: Any) -> Any:
        """Set ``detection.overlapped`` from this frame's overlapped boxes; returns it."""
        detection.overlapped = detection.others in self.overlapped
        return detection

    def update(self, detections: list, today: Any = None) -> None:
        for d in detections:
            self.mark(d)
        super().update(detections, today)
