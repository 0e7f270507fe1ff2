"""Per-camera trackers behind one protocol (``update(dets) -> dets`` with ``track_id``)."""

from __future__ import annotations

from typing import Any

from reid.errors import ReidTraceError
from reid.track.appearance import fuse_cues, histogram_features
from reid.track.config import TrackerConfig
from reid.track.deepsort import DeepSortTracker

__all__ = [
    "DeepSortTracker",
    "TrackerConfig",
    "create_tracker",
    "fuse_cues",
    "histogram_features",
]

_TRACKERS = {"deepsort": DeepSortTracker}


def create_tracker(name: str = "deepsort", **kwargs: Any) -> DeepSortTracker:
    """A tracker by name; lists the valid names when ``name`` is unknown."""
    try:
        cls = _TRACKERS[name]
    except KeyError:
        raise ReidTraceError(
            f"unknown tracker {name!r}", hint=f"choose one of: {', '.join(sorted(_TRACKERS))}"
        ) from None
    return cls(**kwargs)
