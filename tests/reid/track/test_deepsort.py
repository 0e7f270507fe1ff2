import numpy as np
import pytest

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.track import create_tracker, fuse_cues, histogram_features


def _frame_dets(k: int, people: list[tuple[float, float, np.ndarray]]) -> Detections:
    boxes = [[x + 3 * k, y, x + 3 * k + 30, y + 80] for x, y, _ in people]
    emb = np.stack([e for _, _, e in people]).astype(np.float32)
    return Detections(
        xyxy=np.array(boxes, np.float32),
        confidence=np.full(len(people), 0.9),
        frame_idx=np.full(len(people), k),
        embedding=emb / np.linalg.norm(emb, axis=1, keepdims=True),
    )


def test_two_walkers_keep_their_ids_and_first_frames() -> None:
    rng = np.random.default_rng(0)
    people = [(10.0, 20.0, rng.normal(size=16)), (200.0, 40.0, rng.normal(size=16))]
    tracker = create_tracker("deepsort", n_init=3)
    out = [tracker.update(_frame_dets(k, people)) for k in range(20)]
    allrows = Detections.merge(out)
    assert allrows.track_id is not None
    assert len(allrows) == 40  # tentative frames are emitted once the track is confirmed
    by_person = {}
    for x0, tid in zip(allrows.xyxy[:, 1], allrows.track_id, strict=True):
        by_person.setdefault(float(x0), set()).add(int(tid))
    assert all(len(ids) == 1 for ids in by_person.values())
    assert len(set().union(*by_person.values())) == 2
    assert sorted(allrows.frame_idx[allrows.track_id == allrows.track_id[0]]) == list(range(20))


def test_a_single_false_alarm_never_becomes_a_track() -> None:
    tracker = create_tracker()
    emb = np.ones((1, 8), np.float32) / np.sqrt(8)
    blip = Detections(np.array([[5, 5, 40, 90]]), np.array([0.9]), np.array([0]), embedding=emb)
    assert len(tracker.update(blip)) == 0
    empty = Detections.empty()
    empty.embedding = np.zeros((0, 8), np.float32)
    assert all(len(tracker.update(empty)) == 0 for _ in range(5))


def test_histogram_features_are_unit_vectors() -> None:
    frame = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    dets = Detections(np.array([[10, 10, 50, 110], [0, 0, 1, 1]]), np.ones(2), np.zeros(2))
    f = histogram_features(frame, dets)
    assert f.shape[0] == 2 and np.isclose(np.linalg.norm(f[0]), 1.0) and not f[1].any()


def test_fused_cue_distances_are_the_weighted_mean_of_both() -> None:
    rng = np.random.default_rng(2)
    h = rng.random((4, 72)).astype(np.float32)
    h /= np.linalg.norm(h, axis=1, keepdims=True)
    h[3] = 0.0  # a box too small for a histogram
    r = rng.normal(size=(4, 16)).astype(np.float32)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    f = fuse_cues(h, r, weight=0.5)
    assert np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    want = (1 - h[:3] @ h[:3].T + 0.5 * (1 - r[:3] @ r[:3].T)) / 1.5
    assert np.allclose(1 - f[:3] @ f[:3].T, want, atol=1e-5)
    assert np.isclose(f[3] @ f[2], r[3] @ r[2] * np.sqrt(0.5 / 1.5), atol=1e-5)
    with pytest.raises(ValueError):
        fuse_cues(h, r[:2])


def test_bad_tracker_arguments() -> None:
    with pytest.raises(ReidTraceError, match="unknown tracker"):
        create_tracker("sort9000")
    with pytest.raises(ReidTraceError):
        create_tracker(n_init=0)


def _scored(k: int, people: list[tuple[float, float, np.ndarray]], scores: list[float]):
    d = _frame_dets(k, people)
    d.confidence = np.asarray(scores, np.float32)
    return d


def test_weak_boxes_continue_tracks_but_never_start_them() -> None:
    rng = np.random.default_rng(1)
    walker = [(10.0, 20.0, rng.normal(size=16))]
    clutter = [(300.0, 200.0, rng.normal(size=16))]
    for high, expect_weak_rows in ((0.35, 10), (0.0, 0)):
        tracker = create_tracker("deepsort", high_score=high, max_age=30)
        rows = [tracker.update(_scored(k, walker, [0.9])) for k in range(10)]
        # the walker fades: the detector scores them 0.2 (below 0.35) for 10 frames; a weak box
        # on clutter appears at the same time
        for k in range(10, 20):
            d = Detections.merge([_scored(k, walker, [0.2]), _scored(k, clutter, [0.2])])
            rows.append(tracker.update(d if high else d[d.confidence >= 0.35]))
        out = Detections.merge(rows)
        weak = out[out.frame_idx >= 10]
        assert len(weak) == expect_weak_rows
        assert len(set(out.track_id.tolist())) == 1  # one id, and no track on the clutter
    with pytest.raises(ReidTraceError, match="high_score"):
        create_tracker("deepsort", high_score=1.5)


def _walk_with_gap(tracker, people, missing: range, frames: int = 24) -> Detections:
    """Feed ``frames`` frames; in ``missing`` the detector finds nobody."""
    out = []
    for k in range(frames):
        if k in missing:
            empty = Detections.empty()
            empty.embedding = np.zeros((0, 16), np.float32)
            empty.frame_idx = np.zeros(0, np.int64)
            out.append(tracker.update(empty))
        else:
            out.append(tracker.update(_frame_dets(k, people)))
    return Detections.merge(out)


def test_short_gaps_are_bridged_with_interpolated_boxes() -> None:
    rng = np.random.default_rng(2)
    walker = [(10.0, 20.0, rng.normal(size=16))]
    rows = _walk_with_gap(create_tracker("deepsort", max_gap=5), walker, range(10, 14))
    assert sorted(rows.frame_idx.tolist()) == list(range(24))  # every frame, none twice
    assert len(set(rows.track_id.tolist())) == 1
    filled = rows[rows.confidence == 0]
    assert sorted(filled.frame_idx.tolist()) == [10, 11, 12, 13]
    # the walker moves 3 px a frame: interpolation between frames 9 and 14 lands on the truth
    for f, box in zip(filled.frame_idx, filled.xyxy, strict=True):
        np.testing.assert_allclose(box, [10 + 3 * f, 20, 40 + 3 * f, 100], atol=1e-4)
    assert (rows[rows.confidence > 0].confidence == np.float32(0.9)).all()


def test_gaps_longer_than_max_gap_and_max_gap_zero_stay_empty() -> None:
    rng = np.random.default_rng(3)
    walker = [(10.0, 20.0, rng.normal(size=16))]
    for max_gap in (0, 3):
        rows = _walk_with_gap(create_tracker("deepsort", max_gap=max_gap), walker, range(10, 14))
        assert sorted(rows.frame_idx.tolist()) == [k for k in range(24) if not 10 <= k < 14]
        assert (rows.confidence > 0).all()
    for bad in (-1, 2.5, True):
        with pytest.raises(ReidTraceError, match="max_gap"):
            create_tracker("deepsort", max_gap=bad)


def _gallery(tracker, track_no: int) -> np.ndarray:
    """The appearance vectors DeepSORT holds for our track ``track_no``."""
    tid = next(t for t, no in tracker.track_no.items() if no == track_no)
    return tracker.gallery[tid]


@pytest.mark.parametrize("cover", [0.5, 1.0])
def test_an_overlapped_box_adds_nothing_to_its_tracks_gallery(cover: float) -> None:
    """A walker's box half hidden by a passer-by still moves the track, but with overlap_cover
    0.5 its (mixed) appearance stays out of the gallery; at 1.0 (off) it goes in."""
    rng = np.random.default_rng(5)
    own, other = rng.normal(size=16), rng.normal(size=16)
    tracker = create_tracker("deepsort", n_init=1, overlap_cover=cover)
    walker = [(10.0, 20.0, own)]
    for k in range(4):
        tracker.update(_frame_dets(k, walker))
    mixed = own + 0.3 * other  # what a box holding part of the passer-by looks like
    both = _frame_dets(4, [(10.0, 20.0, mixed), (22.0, 20.0, other)])  # 60% of the walker covered
    out = tracker.update(both)
    walker_no = int(out.track_id[np.argmin(out.xyxy[:, 0])])
    assert np.isclose(out.xyxy[:, 0].min(), 22.0)  # the walker's box was matched this frame
    unit = mixed / np.linalg.norm(mixed)
    held = np.isclose(_gallery(tracker, walker_no) @ unit, 1.0).any()
    assert held == (cover == 1.0)


def test_overlap_cover_must_be_a_fraction() -> None:
    with pytest.raises(ReidTraceError, match="overlap_cover"):
        create_tracker("deepsort", overlap_cover=1.5)
