"""Identity switches inside tracks, on constructed tracks: a track whose sightings change look is
cut where the tracker lost its person, a clean one is not, and association then links each
part to its own person."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.query.persons import ensure_persons, rebuild_persons
from indexer.query.switches import cut_frame, switch_spans
from indexer.settings import PersonSettings
from indexer.store import repo
from indexer.store.models import Sighting, Track
from tests.indexer.query.helpers import StoreBuilder, look, near

CFG = PersonSettings(split_similarity=0.2)  # the measured setting (off by default)


def frames_and(*vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sightings 10 frames apart with these vectors."""
    return np.arange(len(vectors)) * 10, np.stack(vectors)


def test_a_switch_is_found_and_a_clean_track_is_left_alone() -> None:
    a = [look(0, noise=0.15, seed=s) for s in range(3)]
    b = [look(1, noise=0.15, seed=10 + s) for s in range(2)]
    frames, vecs = frames_and(*a, *b)
    assert switch_spans(frames, vecs, CFG.split_similarity) == [(20, 30)]
    frames, vecs = frames_and(*a, look(0, noise=0.15, seed=7))
    assert switch_spans(frames, vecs, CFG.split_similarity) == []
    # one person seen from the front and the back (cosine 0.5): still one person
    frames, vecs = frames_and(look(0), look(0), near(0, 0.5), near(0, 0.5))
    assert switch_spans(frames, vecs, CFG.split_similarity) == []
    # -1 turns the check off
    frames, vecs = frames_and(*a, *b)
    assert switch_spans(frames, vecs, -1.0) == []


def test_two_switches_give_two_cuts_and_one_sighting_is_enough_on_a_side() -> None:
    frames, vecs = frames_and(look(0), look(0), look(1), look(1), look(2))
    assert switch_spans(frames, vecs, CFG.split_similarity) == [(10, 20), (30, 40)]
    frames, vecs = frames_and(look(0), look(1))
    assert switch_spans(frames, vecs, CFG.split_similarity) == [(0, 10)]
    with pytest.raises(ValueError, match="frames"):
        switch_spans(np.arange(3), np.stack([look(0), look(1)]), 0.2)


def test_the_cut_goes_where_the_tracker_lost_its_person() -> None:
    box = np.tile([100.0, 100.0, 140.0, 200.0], (6, 1))
    seen = np.ones(6)
    # a run of frames without a box: the second person starts after it
    assert cut_frame(np.array([10, 11, 12, 30, 31, 32]), seen, box) == 30
    # no gap, but the tracker coasted on interpolated boxes (confidence 0) over 13-16
    coast = np.array([1, 0, 0, 0, 0, 1.0])
    assert cut_frame(np.arange(12, 18), coast, box) == 15
    # neither: where the box jumps (here it doubles in height at frame 15)
    jump = box.copy()
    jump[3:, 3] = 300.0
    assert cut_frame(np.arange(12, 18), seen, jump) == 15
    with pytest.raises(ValueError, match="both"):
        cut_frame(np.array([5]), np.ones(1), box[:1])


def test_split_track_moves_the_later_boxes_and_sightings(session: Session) -> None:
    b = StoreBuilder(session)
    b.camera("cam1")
    t = b.track("cam1", 0, 4, None)  # frames 0..40
    b.sightings(t, {2: look(0), 5: look(0), 30: look(1), 35: look(1)})
    with pytest.raises(ValueError, match="outside"):
        repo.split_track(session=session, track_id=t.id, at_frame=0)
    new = repo.split_track(session=session, track_id=t.id, at_frame=20)
    old = repo.get_track(session=session, track_id=t.id)
    assert old is not None
    assert (old.start_frame, old.end_frame, old.num_detections) == (0, 19, 20)
    assert (new.start_frame, new.end_frame, new.num_detections) == (20, 40, 21)
    assert new.track_no == t.track_no + 1 and new.person_id is None
    assert new.start_time > old.end_time
    moved = session.scalars(select(Sighting.track_id).order_by(Sighting.id)).all()
    assert moved == [old.id, old.id, new.id, new.id]
    assert repo.track_embedding(old) == pytest.approx(look(0))
    assert repo.track_embedding(new) == pytest.approx(look(1))


def test_association_cuts_a_switched_track_and_links_each_part(session: Session) -> None:
    """cam1's tracker followed person 0 for 10 s, then person 1: after the cut, each part
    joins that person's cam2 track."""
    b = StoreBuilder(session)
    b.camera("cam1")
    b.camera("cam2")
    switched = b.track("cam1", 0, 20, None, path=((0, 0), (10, 0)))
    b.sightings(switched, {20: look(0), 50: look(0), 150: look(1), 180: look(1)})
    p0 = b.track("cam2", 40, 50, None, path=((20, 0), (25, 0)))
    b.sightings(p0, {405: look(0), 450: near(0, 0.8)})
    p1 = b.track("cam2", 60, 70, None, path=((20, 5), (25, 5)))
    b.sightings(p1, {605: look(1), 650: near(1, 0.8)})
    clean = b.track("cam1", 100, 110, None, path=((0, 5), (5, 5)))
    b.sightings(clean, {1005: look(2), 1050: near(2, 0.6)})
    done = ensure_persons(session, CFG)
    assert done is not None and done.split == 1 and done.tracks == 5
    session.expire_all()
    tracks = {t.id: t for t in session.scalars(select(Track))}
    second = next(t for t in tracks.values() if t.id not in (switched.id, p0.id, p1.id, clean.id))
    first = tracks[switched.id]
    assert first.end_frame < 150 and second.start_frame > 50
    assert first.person_id == tracks[p0.id].person_id
    assert second.person_id == tracks[p1.id].person_id != first.person_id
    assert tracks[clean.id].num_detections == 101  # not cut
    # nothing more to cut, not even when every track is checked again
    assert ensure_persons(session, CFG) is None
    assert rebuild_persons(session, CFG).split == 0


def test_tracks_of_a_running_video_are_not_cut(session: Session) -> None:
    b = StoreBuilder(session)
    b.camera("cam1")
    t = b.track("cam1", 0, 20, None)
    b.sightings(t, {20: look(0), 50: look(0), 150: look(1), 180: look(1)})
    b.videos["cam1"].status = "running"
    session.commit()
    assert repo.sighting_series(session=session, track_ids=[t.id]) == {}
    done = ensure_persons(session, CFG)
    assert done is not None and done.split == 0 and done.tracks == 1


def test_split_similarity_is_a_cosine_and_off_by_default(session: Session) -> None:
    with pytest.raises(ValueError, match="cosine"):
        PersonSettings(split_similarity=1.5)
    b = StoreBuilder(session)
    b.camera("cam1")
    t = b.track("cam1", 0, 20, None)
    b.sightings(t, {20: look(0), 50: look(0), 150: look(1), 180: look(1)})
    done = ensure_persons(session, PersonSettings())
    assert done is not None and done.split == 0 and done.tracks == 1
