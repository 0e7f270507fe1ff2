"""The resumable state: versioned arrays, never pickle; a state it cannot use restarts the video."""

from __future__ import annotations

import io
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from indexer.ingest import checkpoint
from indexer.ingest.checkpoint import PipelineState, StateRejected
from indexer.ingest.sources import discover_sources
from reid.detections import Detections
from reid.track import DeepSortTracker
from reid.track.selection import BestCrops
from tests.indexer.ingest.test_ingest import rows, run

SETTINGS = {"tracker": {"max_age": 30}, "appearance": "histogram"}


def _state() -> PipelineState:
    """A state with open tracks, kept crops and counters, after 12 frames of two walkers."""
    rng = np.random.default_rng(0)
    tracker, crops = DeepSortTracker(), BestCrops(k=3, min_gap=2)
    looks = rng.random((2, 8)).astype(np.float32)
    frame = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    last_seen: dict[int, int] = {}
    for k in range(12):
        dets = Detections(
            xyxy=np.array([[10 + 4 * k, 20, 40 + 4 * k, 120], [200 - 3 * k, 30, 232 - 3 * k, 140]]),
            confidence=np.array([0.9, 0.8]),
            frame_idx=np.array([k, k]),
            embedding=looks / np.linalg.norm(looks, axis=1, keepdims=True),
        )
        out = tracker.update(dets)
        for no, box in zip(out.track_id.tolist(), out.xyxy, strict=True):
            crops.offer(no, frame, k, box, np.zeros((0, 4)))
            last_seen[no] = k
    return PipelineState(tracker, crops, last_seen, {n: 5 for n in last_seen})


def test_a_state_round_trips_through_bytes_without_pickle() -> None:
    state = _state()
    blob = checkpoint.encode(state, SETTINGS)
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:  # readable with pickle off
        assert all(z[k].dtype != object for k in z.files)
    again = checkpoint.decode(blob, PipelineState(DeepSortTracker(), BestCrops(3, 2), {}, {}),
                              SETTINGS)  # fmt: skip
    assert again.last_seen == state.last_seen and again.track_frames == state.track_frames
    assert list(again.last_seen) == list(state.last_seen)  # the order decides sighting order
    for no in state.crops.tracks():
        a, b = state.crops.pop(no), again.crops.pop(no)
        assert [(c.score, c.frame_idx, c.box) for c in a] == [
            (c.score, c.frame_idx, c.box) for c in b
        ]
        assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (pickle.dumps({"version": 1}), "older reidtrace"),
        (b"", "older reidtrace"),
    ],
)
def test_unreadable_states_are_rejected_with_a_reason(blob: bytes, reason: str) -> None:
    with pytest.raises(StateRejected, match=reason):
        checkpoint.decode(blob, _state(), SETTINGS)


def test_another_version_or_other_settings_are_rejected() -> None:
    blob = checkpoint.encode(_state(), SETTINGS)
    with pytest.raises(StateRejected, match=r"settings changed.*appearance"):
        checkpoint.decode(blob, _state(), {**SETTINGS, "appearance": "reid"})
    buf = io.BytesIO()
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["header"] = np.array(str(arrays["header"]).replace('"version": 2', '"version": 99'))
    np.savez(buf, **arrays)
    with pytest.raises(StateRejected, match="version 99"):
        checkpoint.decode(buf.getvalue(), _state(), SETTINGS)


def test_a_video_with_an_unusable_state_restarts_and_says_why(
    tiny_world, tmp_path: Path, tiny_embedder: Path
) -> None:
    """A run stopped half-way whose saved state is an old pickle: the next run logs why, redoes
    the video from frame 0, and stores exactly the rows of an uninterrupted run."""
    world, _ = tiny_world
    clean, broken = tmp_path / "clean", tmp_path / "broken"
    for home in (clean, broken):
        home.mkdir()
        assert run(world, home, tiny_embedder)["ok"]
    first = discover_sources([world])[0]
    with sqlite3.connect(broken / "db.sqlite") as db:
        (vid,) = db.execute("SELECT id FROM video WHERE path = ?", (str(first.path),)).fetchone()
        db.execute(
            "UPDATE video SET status = 'running', frames_done = 40, checkpoint = ? WHERE id = ?",
            (pickle.dumps({"old": "state"}), vid),
        )
    again = run(world, broken, tiny_embedder)
    (report,) = [v for v in again["videos"] if v["video_id"] == vid]
    assert report["status"] == "done" and report["resumed_from"] == 0
    assert any("restarted from frame 0" in n and "older" in n for n in report["notes"])
    assert rows(broken) == rows(clean)
