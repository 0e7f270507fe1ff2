"""The resumable state of one video's ingestion, as versioned arrays (never pickle).

Saved with every chunk the pipeline commits (``Store.write_chunk``) and read when a killed run
resumes. The file is ``numpy.savez`` of named arrays of numbers and strings, read back with
``allow_pickle=False``: loading a checkpoint from a shared database runs no code, and an upgrade
of any library cannot make it unreadable. A JSON header names the format, its version and the
settings the state depends on; a state of another version or other settings is not used and
the video restarts from its first frame, with the reason in the report and the log.

Layout: ``header`` (JSON), ``tracker.*`` (the tracker's ``get_state``), ``crops.*`` (the best
crops kept per open track, ``BestCrops.get_state``), ``last_seen`` and ``track_frames``
((n, 2) track number -> frame / count, in insertion order: it decides the order of sightings).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from reid.protocols import Tracker
from reid.track.selection import BestCrops
from reid.track.state import pick, prefixed

FORMAT = "reidtrace.ingest.state"
VERSION = 2  # 1: the pickled object graph of sessions 1-5 (no longer read)


@dataclass
class PipelineState:
    """What the pipeline holds in memory between frames of one video."""

    tracker: Tracker
    crops: BestCrops
    last_seen: dict[int, int]  # track number -> last frame it was matched
    track_frames: dict[int, int]  # track number -> boxes seen so far


class StateRejected(Exception):
    """A saved state that cannot be continued; the message says why (it goes in the report)."""


def _pairs(d: dict[int, int]) -> np.ndarray:
    return np.array(list(d.items()), np.int64).reshape(-1, 2)


def encode(state: PipelineState, settings: dict[str, Any]) -> bytes:
    """The state as bytes; ``settings`` (JSON values) must match when it is decoded."""
    header = {"format": FORMAT, "version": VERSION, "settings": settings}
    arrays = {
        "header": np.array(json.dumps(header, sort_keys=True)),
        "last_seen": _pairs(state.last_seen),
        "track_frames": _pairs(state.track_frames),
        **prefixed("tracker.", state.tracker.get_state()),
        **prefixed("crops.", state.crops.get_state()),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def decode(blob: bytes, state: PipelineState, settings: dict[str, Any]) -> PipelineState:
    """Load ``blob`` into ``state`` (a fresh tracker and crop store built with ``settings``).

    Raises ``StateRejected`` with the reason when the blob is unreadable, of another format or
    version, or was written with other settings.
    """
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise StateRejected(
            f"the saved state is not in this version's format ({type(err).__name__}); "
            "it was probably written by an older reidtrace"
        ) from None
    try:
        header = json.loads(str(arrays.pop("header")))
    except (KeyError, ValueError):
        raise StateRejected("the saved state has no readable header") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise StateRejected(
            f"the saved state is {header.get('format')} version {header.get('version')}; "
            f"this reidtrace reads {FORMAT} version {VERSION}"
        )
    if header.get("settings") != settings:
        changed = sorted(
            k
            for k in set(settings) | set(header.get("settings") or {})
            if settings.get(k) != (header.get("settings") or {}).get(k)
        )
        raise StateRejected(f"the settings changed since this video started: {changed}")
    try:
        state.tracker.set_state(pick("tracker.", arrays))
        state.crops.set_state(pick("crops.", arrays))
    except (KeyError, ValueError, IndexError) as err:
        why = f"{type(err).__name__}: {err}"
        raise StateRejected(f"the saved state is incomplete ({why})") from None
    state.last_seen = dict(arrays["last_seen"].tolist())
    state.track_frames = dict(arrays["track_frames"].tolist())
    return state
