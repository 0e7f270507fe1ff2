"""A tracker's memory as named arrays, so it can be saved without pickle.

Ingestion saves the tracker with every chunk it commits and resumes a killed run from it
(``indexer.ingest.checkpoint``). Plain arrays (numbers and strings only) can be written and read
with ``numpy.savez`` / ``numpy.load(allow_pickle=False)``: reading a checkpoint runs no code, and
an upgrade of any library cannot make an old one unreadable.

Dict and list orders are kept: they decide the numbering of new tracks and the order of rows,
so a resumed run gives exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reid.detections import Detections

Arrays = dict[str, np.ndarray]


@dataclass
class TrackerState:
    """What ``DeepSortTracker`` remembers between frames (its fields, by name)."""

    tracks: list[Any]  # reid.track.deepsort.Track
    gallery: dict[int, np.ndarray]
    next_tid: int
    track_no: dict[int, int]
    pending: dict[int, list[Detections]]
    last: dict[int, tuple[int, np.ndarray]]


def ragged(parts: list[np.ndarray], dtype: type, width: int | None = None) -> Arrays:
    """Row blocks of one width as ``{"rows": stacked, "count": rows per block}``."""
    counts = np.array([len(p) for p in parts], np.int64)
    if sum(counts):
        rows = np.concatenate([np.asarray(p, dtype) for p in parts if len(p)])
    else:
        rows = np.zeros((0, width or 0), dtype)
    return {"rows": rows, "count": counts}


def unragged(rows: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    """The blocks ``ragged`` stacked, in order."""
    ends = np.cumsum(counts)
    return [rows[e - c : e] for c, e in zip(counts.tolist(), ends.tolist(), strict=True)]


def prefixed(prefix: str, arrays: Arrays) -> Arrays:
    return {f"{prefix}{k}": v for k, v in arrays.items()}


def pick(prefix: str, arrays: Arrays) -> Arrays:
    """The arrays whose names start with ``prefix``, without it."""
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def pack_detections(dets: Detections) -> Arrays:
    """Every column of ``dets`` as arrays (``extra`` columns under ``extra.NAME``)."""
    out = {
        "xyxy": dets.xyxy,
        "confidence": dets.confidence,
        "frame_idx": dets.frame_idx,
        "camera_id": np.array(dets.camera_id),
    }
    if dets.track_id is not None:
        out["track_id"] = dets.track_id
    if dets.embedding is not None:
        out["embedding"] = dets.embedding
    out.update({f"extra.{k}": v for k, v in dets.extra.items()})
    return out


def unpack_detections(arrays: Arrays) -> Detections:
    return Detections(
        xyxy=arrays["xyxy"],
        confidence=arrays["confidence"],
        frame_idx=arrays["frame_idx"],
        track_id=arrays.get("track_id"),
        embedding=arrays.get("embedding"),
        extra=pick("extra.", arrays),
        camera_id=str(arrays["camera_id"]),
    )


def pack_tracker(s: TrackerState) -> Arrays:
    """``TrackerState`` -> named arrays (see ``unpack_tracker``)."""
    t = s.tracks
    dim = next((len(f) for x in t for f in x.features), 0)
    out: Arrays = {
        "next_tid": np.array(s.next_tid, np.int64),
        "t.tid": np.array([x.tid for x in t], np.int64),
        "t.counts": np.array([[x.hits, x.age, x.since_update, x.status] for x in t], np.int64),
        # a track started this frame has a float32 mean; its next prediction depends on that
        "t.mean32": np.array([x.mean.dtype == np.float32 for x in t], bool),
        "t.mean": np.array([x.mean for x in t], np.float64).reshape(-1, 8),
        "t.cov": np.array([x.cov for x in t], np.float64).reshape(-1, 8, 8),
        "t.has_ground": np.array([x.ground is not None for x in t], bool),
        "t.origin": np.array([_origin(x) for x in t], np.float64).reshape(-1, 3),
        "t.moved": np.array([x.moved for x in t], bool),
        "t.score_sum": np.array([x.score_sum for x in t], np.float64),
        "t.score_n": np.array([x.score_n for x in t], np.int64),
        "t.ground_mean": np.array([_ground(x)[0] for x in t], np.float64).reshape(-1, 4),
        "t.ground_cov": np.array([_ground(x)[1] for x in t], np.float64).reshape(-1, 4, 4),
        "g.tid": np.array(list(s.gallery), np.int64),
        "n.tid": np.array(list(s.track_no), np.int64),
        "n.no": np.array(list(s.track_no.values()), np.int64),
        "l.tid": np.array(list(s.last), np.int64),
        "l.frame": np.array([f for f, _ in s.last.values()], np.int64),
        "l.box": np.array([b for _, b in s.last.values()], np.float32).reshape(-1, 4),
    }
    out |= prefixed("t.features.", ragged([np.array(x.features) for x in t], np.float32, dim))
    out |= prefixed("g.", ragged(list(s.gallery.values()), np.float32, dim))
    rows = [(tid, d) for tid, ds in s.pending.items() for d in ds]
    out["p.tid"] = np.array([tid for tid, _ in rows], np.int64)
    if rows:
        out |= prefixed("p.", pack_detections(Detections.merge([d for _, d in rows])))
    return out


def _origin(track: Any) -> np.ndarray:
    return track.origin if track.origin is not None else np.full(3, np.nan)


def _ground(track: Any) -> tuple[np.ndarray, np.ndarray]:
    return track.ground if track.ground is not None else (np.zeros(4), np.zeros((4, 4)))


def unpack_tracker(a: Arrays, track_cls: type) -> TrackerState:
    """Named arrays -> ``TrackerState``; ``track_cls`` builds each track from its fields."""
    features = unragged(a["t.features.rows"], a["t.features.count"])
    n = len(a["t.tid"])  # checkpoints written before the track score have no score arrays
    score_sum, score_n = a.get("t.score_sum", np.zeros(n)), a.get("t.score_n", np.zeros(n, int))
    tracks = []
    for i, tid in enumerate(a["t.tid"].tolist()):
        hits, age, since, status = a["t.counts"][i].tolist()
        mean = a["t.mean"][i].copy()
        tracks.append(
            track_cls(
                tid=tid,
                mean=mean.astype(np.float32) if a["t.mean32"][i] else mean,
                cov=a["t.cov"][i].copy(),
                hits=hits,
                age=age,
                since_update=since,
                status=status,
                features=list(features[i].copy()),
                ground=(a["t.ground_mean"][i].copy(), a["t.ground_cov"][i].copy())
                if a["t.has_ground"][i]
                else None,
                origin=None if np.isnan(a["t.origin"][i]).any() else a["t.origin"][i].copy(),
                moved=bool(a["t.moved"][i]),
                score_sum=float(score_sum[i]),
                score_n=int(score_n[i]),
            )
        )
    galleries = unragged(a["g.rows"], a["g.count"])
    pending: dict[int, list[Detections]] = {}
    if len(a["p.tid"]):
        dets = unpack_detections(pick("p.", a))
        for i, tid in enumerate(a["p.tid"].tolist()):
            pending.setdefault(tid, []).append(dets[np.array([i])])
    return TrackerState(
        tracks=tracks,
        gallery={t: g.copy() for t, g in zip(a["g.tid"].tolist(), galleries, strict=True)},
        next_tid=int(a["next_tid"]),
        track_no=dict(zip(a["n.tid"].tolist(), a["n.no"].tolist(), strict=True)),
        pending=pending,
        last={
            t: (f, b.copy())
            for t, f, b in zip(a["l.tid"].tolist(), a["l.frame"].tolist(), a["l.box"], strict=True)
        },
    )
