"""Co-occurrence contacts (ARCHITECTURE.md), pure numpy.

The one definition shared by the synthetic world's ground truth and the query engine, so that
the engine is scored against exactly what it is asked to compute:

- Two people are *within d* at a frame of a camera when both have a sample at that
  ``(camera, frame)`` and the distance between their foot points is ``<= d`` (inclusive).
  Distance is in metres on the ground plane, or, when ``scale`` (box height in pixels) is given,
  in units of the two people's mean box height at that frame.
- Exposure of a pair in a camera = the seconds those frames stand for (the sum of ``dt``).
  Gaps do not reset anything: exposure is total time, not continuous time.
- B is a contact of A when their total exposure over all cameras is ``>= min_seconds``. The
  total counts each moment once: exposures in different cameras add up, but a moment seen by
  two overlapping cameras is not counted twice (the union of the within-d frame intervals).

Persons are global ids (after cross-camera matching), so exposure in different cameras adds up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from reid.errors import ReidTraceError

__all__ = [
    "ClosePairs",
    "ContactRow",
    "Observations",
    "close_pairs",
    "compute_contacts",
    "exposure_by_person",
]

_DIST_TOL = 1e-9
"""Distances this close above ``d`` still count: ``d`` is inclusive and foot points come from
float arithmetic (``hypot(1.2000000000000002, 1.6)`` must count as 2 m)."""

_TIME_TOL = 1e-9
"""Exposure this close below ``min_seconds`` still counts as reaching it."""


@dataclass
class Observations:
    """Foot points of people over time, one row per (person, camera, frame) sample."""

    person: np.ndarray  # (n,) int64 global person id
    camera: np.ndarray  # (n,) camera ids, str or int
    frame: np.ndarray  # (n,) int64 frame index within its camera
    time: np.ndarray  # (n,) float64 UTC epoch seconds of that frame
    x: np.ndarray  # (n,) float64 foot point: metres on the ground, or pixels
    y: np.ndarray  # (n,) float64
    dt: np.ndarray  # (n,) float64 seconds one sample stands for (1 / fps of its camera)
    scale: np.ndarray | None = None  # (n,) float64 box height in pixels: distances in heights

    def __post_init__(self) -> None:
        self.person = np.asarray(self.person, dtype=np.int64).reshape(-1)
        self.camera = np.asarray(self.camera).reshape(-1)
        self.frame = np.asarray(self.frame, dtype=np.int64).reshape(-1)
        self.time = np.asarray(self.time, dtype=np.float64).reshape(-1)
        self.x = np.asarray(self.x, dtype=np.float64).reshape(-1)
        self.y = np.asarray(self.y, dtype=np.float64).reshape(-1)
        self.dt = np.asarray(self.dt, dtype=np.float64).reshape(-1)
        if self.scale is not None:
            self.scale = np.asarray(self.scale, dtype=np.float64).reshape(-1)
        n = len(self.person)
        cols = {
            "camera": self.camera,
            "frame": self.frame,
            "time": self.time,
            "x": self.x,
            "y": self.y,
            "dt": self.dt,
            "scale": self.scale,
        }
        ragged = {k: len(v) for k, v in cols.items() if v is not None and len(v) != n}
        if ragged:
            raise ValueError(f"bad Observations: {n} persons but row counts {ragged}")
        if n and not np.all(self.dt > 0):
            raise ValueError(f"dt must be > 0 seconds, got min {self.dt.min()}")
        if self.scale is not None and n and not np.all(self.scale > 0):
            raise ValueError(f"scale (box height) must be > 0 pixels, got min {self.scale.min()}")

    def __len__(self) -> int:
        return len(self.person)


@dataclass(frozen=True)
class ContactRow:
    """Exposure of ``subject`` to ``contact`` in one camera (one row per camera and direction)."""

    subject: int
    contact: int
    camera: Any  # the camera id as given in Observations (str or int)
    start: float  # time of the first frame within d
    end: float  # time of the last frame within d (its start, not start + dt)
    exposure_s: float  # seconds within d in this camera
    min_distance: float  # closest the two came in this camera (metres or box heights)
    total_exposure_s: float  # the pair's exposure over all cameras, each moment counted once


def compute_contacts(
    obs: Observations, *, distance: float = 2.0, min_seconds: float = 5.0
) -> list[ContactRow]:
    """Every contact pair, one row per camera with exposure, in both directions.

    Rows are sorted by ``(subject, contact, start, camera)``. ``distance`` is metres, or box
    heights when ``obs.scale`` is given (the architecture's default there is 1.0).
    """
    _check_thresholds(distance, min_seconds)
    a, b, dist, cam_codes, cameras = _close_pairs(obs, distance)
    if len(a) == 0:
        return []
    pa, pb = obs.person[a], obs.person[b]
    pair_cam = np.stack([pa, pb, cam_codes[a]], axis=1)
    keys, inv = np.unique(pair_cam, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    n_keys = len(keys)
    exposure = _exposure(inv, obs.dt[a], n_keys)
    t = obs.time[a]
    start = np.full(n_keys, np.inf)
    end = np.full(n_keys, -np.inf)
    min_d = np.full(n_keys, np.inf)
    np.minimum.at(start, inv, t)
    np.maximum.at(end, inv, t)
    np.minimum.at(min_d, inv, dist)

    total = _pair_totals(pa, pb, cam_codes[a], t, obs.dt[a], keys, exposure)
    rows: list[tuple[tuple[int, int, float, int], ContactRow]] = []
    for k, (p, q, c) in enumerate(keys.tolist()):
        if total[(p, q)] < min_seconds - _TIME_TOL:
            continue
        cam = cameras[c]
        fields = (
            cam,
            float(start[k]),
            float(end[k]),
            float(exposure[k]),
            float(min_d[k]),
            total[(p, q)],
        )
        rows.append(((p, q, fields[1], c), ContactRow(p, q, *fields)))
        rows.append(((q, p, fields[1], c), ContactRow(q, p, *fields)))
    rows.sort(key=lambda r: r[0])
    return [r for _, r in rows]


@dataclass(frozen=True)
class ClosePairs:
    """Every co-present sample pair within ``d``: the per-frame evidence behind the rows.

    ``a`` and ``b`` index the ``Observations`` (``person[a] < person[b]``), ``distance`` is in
    the observations' units (metres, or box heights when ``scale`` is given).
    """

    a: np.ndarray  # (m,) int64 sample index
    b: np.ndarray  # (m,) int64 sample index
    distance: np.ndarray  # (m,) float64


def close_pairs(obs: Observations, *, distance: float = 2.0) -> ClosePairs:
    """The frames behind ``compute_contacts`` (same pairing, same inclusive ``d``), unfiltered
    by ``min_seconds``: a caller showing *why* a pair is a contact picks its frames from these."""
    _check_thresholds(distance, 0.0)
    a, b, dist, _, _ = _close_pairs(obs, distance)
    return ClosePairs(a=a, b=b, distance=dist)


def exposure_by_person(rows: list[ContactRow]) -> dict[tuple[int, int], float]:
    """Total exposure per ``(subject, contact)`` over cameras, from ``compute_contacts`` rows."""
    return {(r.subject, r.contact): r.total_exposure_s for r in rows}


def _check_thresholds(distance: float, min_seconds: float) -> None:
    if not np.isfinite(distance) or distance <= 0:
        raise ReidTraceError(
            f"contact distance must be a positive number, got {distance!r}",
            hint="use metres with a ground-plane homography (default 2.0), else box heights (1.0)",
        )
    if not np.isfinite(min_seconds) or min_seconds < 0:
        raise ReidTraceError(
            f"contact min_seconds must be >= 0, got {min_seconds!r}",
            hint="the default is 5.0 seconds of total exposure",
        )


def _pair_totals(
    pa: np.ndarray,
    pb: np.ndarray,
    cam: np.ndarray,
    t: np.ndarray,
    dt: np.ndarray,
    keys: np.ndarray,
    exposure: np.ndarray,
) -> dict[tuple[int, int], float]:
    """Per pair, seconds within d over all cameras with every moment counted once.

    A pair seen in one camera keeps that camera's exact frame-count exposure; across cameras
    the frame intervals ``[t, t + dt)`` are merged, so overlapping views do not double count.
    """
    per_pair: dict[tuple[int, int], list[float]] = defaultdict(list)
    for (p, q, _), e in zip(keys.tolist(), exposure.tolist(), strict=True):
        per_pair[(p, q)].append(e)
    totals = {k: v[0] for k, v in per_pair.items() if len(v) == 1}
    multi = [k for k, v in per_pair.items() if len(v) > 1]
    if multi:
        order = np.lexsort((t, pb, pa))
        pa_s, pb_s, t_s, dt_s = pa[order], pb[order], t[order], dt[order]
        bounds = np.flatnonzero(np.diff(pa_s) | np.diff(pb_s)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
            key = (int(pa_s[lo]), int(pb_s[lo]))
            if key in totals:
                continue
            totals[key] = _union_seconds(t_s[lo:hi], dt_s[lo:hi])
    return totals


def _union_seconds(t: np.ndarray, dt: np.ndarray) -> float:
    """Length of the union of ``[t, t + dt)`` (``t`` sorted), in whole microseconds.

    Epoch seconds near 1.7e9 carry ~1e-7 s of float error each, which would add up over many
    runs; integer microseconds relative to the first frame keep the total exact.
    """
    starts = np.round((t - t[0]) * 1e6).astype(np.int64)
    ends = starts + np.round(dt * 1e6).astype(np.int64)
    run_end = np.maximum.accumulate(ends)
    idx = np.flatnonzero(np.r_[True, starts[1:] > run_end[:-1]])
    run_ends = np.r_[run_end[idx[1:] - 1], run_end[-1]]
    return int((run_ends - starts[idx]).sum()) / 1e6


def _close_pairs(
    obs: Observations, distance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[Any]]:
    """Sample index pairs ``(a, b)`` (person[a] < person[b]) co-present and within ``distance``.

    Samples are sorted by (camera, frame, person); each (camera, frame) group of size s yields
    its s (s - 1) / 2 pairs, generated for all groups of the same size at once, so the Python
    loop runs over distinct group sizes, not over frames.
    """
    empty = np.zeros(0, np.int64)
    if len(obs) == 0:
        return empty, empty, np.zeros(0), empty, []
    uniq, cam_codes = np.unique(obs.camera, return_inverse=True)
    cam_codes = cam_codes.reshape(-1).astype(np.int64)
    cameras = [c.item() if isinstance(c, np.generic) else c for c in uniq]
    order = np.lexsort((obs.person, obs.frame, cam_codes))
    cam_s, frame_s, person_s = cam_codes[order], obs.frame[order], obs.person[order]
    same_group = (cam_s[1:] == cam_s[:-1]) & (frame_s[1:] == frame_s[:-1])
    dup = same_group & (person_s[1:] == person_s[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ValueError(
            f"person {person_s[i]} has two samples in camera {cameras[cam_s[i]]!r} "
            f"frame {frame_s[i]}"
        )
    starts = np.flatnonzero(np.concatenate([[True], ~same_group]))
    sizes = np.diff(np.append(starts, len(order)))
    a_parts, b_parts = [], []
    for s in np.unique(sizes[sizes >= 2]).tolist():
        iu, ju = np.triu_indices(s, 1)
        first = starts[sizes == s][:, None]
        a_parts.append((first + iu).reshape(-1))
        b_parts.append((first + ju).reshape(-1))
    if not a_parts:
        return empty, empty, np.zeros(0), cam_codes, cameras
    a = order[np.concatenate(a_parts)]
    b = order[np.concatenate(b_parts)]
    dist = np.hypot(obs.x[a] - obs.x[b], obs.y[a] - obs.y[b])
    if obs.scale is not None:
        dist = dist / ((obs.scale[a] + obs.scale[b]) / 2.0)
    close = dist <= distance + _DIST_TOL * max(1.0, distance)
    return a[close], b[close], dist[close], cam_codes, cameras


def _exposure(inv: np.ndarray, dt: np.ndarray, n_keys: int) -> np.ndarray:
    """Seconds per key, as frame count x dt for each distinct dt (so 50 x 0.1 s is exactly 5 s).

    A float running sum of 0.1 drifts (50 additions give 5.000000000000002); counting frames
    per (key, dt) and multiplying keeps reported exposures exact for constant frame rates.
    """
    dt_vals, dt_code = np.unique(dt, return_inverse=True)
    combo = inv.astype(np.int64) * len(dt_vals) + dt_code.reshape(-1)
    combos, counts = np.unique(combo, return_counts=True)
    seconds = counts * dt_vals[combos % len(dt_vals)]
    return np.bincount(combos // len(dt_vals), weights=seconds, minlength=n_keys)
