"""Identity switches inside tracks: where the tracker followed one person and then another.

A tracker that loses its person (two people cross, a group hides one member) may go on with
someone else under the same track. Association then sees one "person" who is two, and
whichever person it joins gets the other's time in a camera: a visit that runs on for the
other's stay, contacts with the other's companions. When ``split_similarity`` is set (off by
default: docs/query.md says what it gains and costs), every track of a finished video is
checked before association, and cut where it switched:

* **Where appearance changes.** A track's sightings (its best crops, embedded at ingestion)
  in frame order are cut in two where the most alike pair across the cut is least alike; when
  even that pair's cosine is below ``split_similarity`` no crop of one side looks like any
  crop of the other: two people. Each side is checked again (binary segmentation, so a track
  that switched twice is cut twice). The most alike pair rather than the mean: one poor crop
  of a person (turned away, half hidden) pulls a mean down, but it still resembles some other
  crop of that person, so a cut is never made on one odd crop (docs/query.md gives the
  measured gap).
* **When the tracker lost its person.** The switch happened between the last sighting before
  and the first after, which can be seconds apart. Inside that span the cut goes where the
  tracker most likely jumped: the longest run of frames without a box (it lost the person and
  picked up someone else), else the middle of the longest run of boxes it interpolated
  (confidence 0: it coasted), else the largest jump of the box (change of height plus
  sideways shift, in box heights).

The cut rewrites the store (:func:`indexer.store.repo.split_track`): the later part becomes a
new track of the same video with its detections and sightings, so trajectories, contacts,
search and the MOT export all see two tracks. Tracks of videos still being ingested are left
alone (their rows may still be rewound).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from indexer.settings import PersonSettings
from indexer.store import repo

__all__ = ["cut_frame", "split_switches", "switch_spans"]


def switch_spans(
    frames: np.ndarray, vectors: np.ndarray, split_similarity: float
) -> list[tuple[int, int]]:
    """Where a track's appearance changes: ``(last frame before, first frame after)`` per
    switch, in frame order.

    ``frames`` ``(n,)`` and unit ``vectors`` ``(n, d)`` are the track's sightings in frame
    order. The cut of a run of sightings is the one whose most alike pair across it has the
    lowest cosine; below ``split_similarity`` it is a switch and both sides are searched
    again."""
    if len(frames) != len(vectors):
        raise ValueError(f"{len(frames)} frames for {len(vectors)} vectors")
    sim = vectors @ vectors.T
    out: list[tuple[int, int]] = []

    def search(lo: int, hi: int) -> None:  # sightings lo..hi-1
        if hi - lo < 2:
            return
        cross = [sim[lo:k, k:hi].max() for k in range(lo + 1, hi)]
        k = lo + 1 + int(np.argmin(cross))
        if min(cross) >= split_similarity:
            return
        search(lo, k)
        out.append((int(frames[k - 1]), int(frames[k])))
        search(k, hi)

    search(0, len(frames))
    return out


def cut_frame(frames: np.ndarray, confidence: np.ndarray, xyxy: np.ndarray) -> int:
    """The first frame of the second person, given the track's boxes from the last sighting
    before a switch to the first after (frame order): after the longest run of frames without
    a box, else the middle of the longest run of interpolated boxes (confidence 0), else after
    the largest jump of the box."""
    if len(frames) < 2:
        raise ValueError("a switch needs the boxes on both of its sides")
    step = np.diff(frames)
    if step.max() > 1:
        return int(frames[int(np.argmax(step)) + 1])
    coasting = confidence <= 0
    best, best_len, run = -1, 0, 0
    for i, c in enumerate(coasting.tolist()):
        run = run + 1 if c else 0
        if run > best_len:
            best, best_len = i, run
    if best_len:
        return int(frames[best - best_len + 1 + best_len // 2])
    h = np.maximum(xyxy[:, 3] - xyxy[:, 1], 1.0)
    cx = (xyxy[:, 0] + xyxy[:, 2]) / 2
    jump = np.abs(np.diff(np.log(h))) + np.abs(np.diff(cx)) / h[1:]
    return int(frames[int(np.argmax(jump)) + 1])


def split_switches(
    session: Session, cfg: PersonSettings, track_ids: list[int]
) -> list[tuple[int, int]]:
    """Cut every track of ``track_ids`` (of a finished video, with sightings) where it
    switched people; ``(old track id, new track id)`` per cut. Does not commit (the caller's
    association run is one transaction). Off (nothing read) at ``split_similarity`` -1."""
    cuts: list[tuple[int, int]] = []
    if cfg.split_similarity <= -1:
        return cuts
    for tid, (frames, vectors) in sorted(
        repo.sighting_series(session=session, track_ids=track_ids).items()
    ):
        spans = switch_spans(frames, vectors, cfg.split_similarity)
        if not spans:
            continue
        dets = repo.detections_for_track(session=session, track_id=tid)
        f = np.array([d.frame_idx for d in dets], np.int64)
        conf = np.array([d.confidence for d in dets], np.float64)
        box = np.array([[d.x1, d.y1, d.x2, d.y2] for d in dets], np.float64)
        at = []
        for lo, hi in spans:
            keep = (f >= lo) & (f <= hi)
            at.append(cut_frame(f[keep], conf[keep], box[keep]))
        for frame in sorted(at, reverse=True):  # the latest first: each cut leaves the earlier
            new = repo.split_track(session=session, track_id=tid, at_frame=frame, commit=False)
            cuts.append((tid, new.id))
    return cuts
