"""The owned DeepSORT: same numbers as deep-sort-realtime, and a state that survives savez/load."""

from __future__ import annotations

import io

import numpy as np
import pytest

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.track import DeepSortTracker, TrackerConfig
from reid.track.deepsort import CONFIRMED

H_IMG_TO_GROUND = [[0.05, 0.0, -12.0], [0.0, 0.2, -20.0], [0.0, 0.0015, 1.0]]


def _stream(n_frames: int = 120, seed: int = 0) -> list[Detections]:
    """Walkers that cross, pause, vanish behind 'pillars' and come back, plus clutter, with
    noisy boxes, mixed scores and appearance vectors near each walker's own."""
    rng = np.random.default_rng(seed)
    people = []
    for _ in range(7):
        start = rng.uniform([0, 150], [400, 250])
        people.append((start, rng.uniform(-3, 3, 2) * [1, 0.3], rng.normal(size=24)))
    out = []
    for k in range(n_frames):
        boxes, scores, feats = [], [], []
        for p, (start, vel, look) in enumerate(people):
            if (k // 9 + p) % 5 == 0 and p % 2:  # hidden for a while
                continue
            x, y = start + vel * k + rng.normal(0, 1.5, 2)
            h = 60 + 0.1 * y
            boxes.append([x, y - h, x + h / 2.6, y])
            scores.append(rng.choice([0.9, 0.6, 0.25]))
            feats.append(look + rng.normal(0, 0.4, 24))
        if k % 4 == 0:  # clutter
            boxes.append([rng.uniform(0, 400), 10, 0, 0])
            boxes[-1][2:] = [boxes[-1][0] + 20, 70]
            scores.append(0.2)
            feats.append(rng.normal(size=24))
        out.append(frame(k, boxes, scores, feats))
    return out


def frame(k: int, boxes: list, scores: list, looks: list) -> Detections:
    """One frame's boxes with unit appearance vectors (the absolute values of ``looks``)."""
    f = np.abs(np.array(looks, np.float32))
    return Detections(
        xyxy=np.array(boxes, np.float32),
        confidence=np.array(scores, np.float32),
        frame_idx=np.full(len(boxes), k),
        embedding=f / np.linalg.norm(f, axis=1, keepdims=True),
    )


def test_the_core_is_deep_sort_realtime_bit_for_bit() -> None:
    """One stage, no gap filling, every box in the gallery: exactly deep-sort-realtime 1.3.2
    (kept as a test dependency for this check; the product no longer imports it)."""
    library = pytest.importorskip("deep_sort_realtime.deepsort_tracker")
    theirs = library.DeepSort(
        embedder=None, max_age=30, n_init=3, max_cosine_distance=0.3, nn_budget=50
    )
    ours = DeepSortTracker(max_cosine_distance=0.3, max_gap=0, overlap_cover=1.0)
    for dets in _stream():
        raw = [
            ([float(x0), float(y0), float(x1 - x0), float(y1 - y0)], float(c), "person")
            for (x0, y0, x1, y1), c in zip(dets.xyxy, dets.confidence, strict=True)
        ]
        theirs.update_tracks(raw, embeds=list(dets.embedding), others=list(range(len(raw))))
        ours.update(dets)
        a = [(int(t.track_id), t.hits, t.age, t.time_since_update, t.state, t.mean.tobytes(),
              t.covariance.tobytes()) for t in theirs.tracker.tracks]  # fmt: skip
        b = [(t.tid, t.hits, t.age, t.since_update, t.status, t.mean.tobytes(), t.cov.tobytes())
             for t in ours.tracks]  # fmt: skip
        assert a == b
        samples = theirs.tracker.metric.samples
        assert list(samples) == [int(k) for k in ours.gallery] or list(samples) == [
            str(k) for k in ours.gallery
        ]
        for key, rows in samples.items():
            assert np.array_equal(np.asarray(rows), ours.gallery[int(key)])


def _saved(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with np.load(io.BytesIO(buf.getvalue()), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize(
    "settings",
    [
        {"high_score": 0.5},
        {"high_score": 0.5, "ground_cue": True, "homography": H_IMG_TO_GROUND, "image_height": 240},
        {"max_gap": 0, "overlap_cover": 1.0, "nn_budget": None},
        {"high_score": 0.5, "clutter": "all", "clutter_frames": 10},
        {"high_score": 0.2, "min_track_score": 0.6, "stitch": True},
    ],
)
def test_a_state_saved_mid_stream_continues_exactly(settings: dict) -> None:
    """Stop at every 17th frame, save the state through numpy's file format (no pickle), and
    continue in a new tracker: the rows are those of one uninterrupted run."""
    stream = _stream(90, seed=3)
    whole = DeepSortTracker(**settings)
    expected = Detections.merge([whole.update(d) for d in stream])
    assert len(expected) > 100 and len(np.unique(expected.track_id)) >= 5

    tracker, rows = DeepSortTracker(**settings), []
    for k, d in enumerate(stream):
        if k and k % 17 == 0:
            state = _saved(tracker.get_state())
            tracker = DeepSortTracker(**settings)
            tracker.set_state(state)
        rows.append(tracker.update(d))
    got = Detections.merge(rows)
    for col in ("xyxy", "confidence", "frame_idx", "track_id", "embedding"):
        assert getattr(got, col).tobytes() == getattr(expected, col).tobytes(), col
    assert [t.tid for t in tracker.tracks] == [t.tid for t in whole.tracks]
    assert tracker.uses_ground == ("homography" in settings)


def test_the_state_is_plain_arrays() -> None:
    tracker = DeepSortTracker()
    for d in _stream(30):
        tracker.update(d)
    state = tracker.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    assert any(t.status == CONFIRMED for t in tracker.tracks)


def test_one_set_of_defaults() -> None:
    assert DeepSortTracker().config == TrackerConfig()
    assert DeepSortTracker(max_age=5).config.max_age == 5
    with pytest.raises(ReidTraceError, match="unknown tracker setting"):
        DeepSortTracker(max_agee=5)
    with pytest.raises(ReidTraceError, match="nn_budget"):
        DeepSortTracker(nn_budget=0)
