"""Cross-camera association on constructed tracks: impossible transitions, ground matching,
learned transit times, incremental updates and rebuilds."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from indexer.query.persons import (
    associate,
    associate_in_blocks,
    ensure_persons,
    rebuild_persons,
    update_persons,
)
from indexer.settings import PersonSettings
from indexer.store import repo
from reid.errors import ReidTraceError
from tests.indexer.query.helpers import StoreBuilder, info, look, near

CFG = PersonSettings()


def groups(labels: list[int]) -> set[frozenset[int]]:
    """The partition of track positions that ``labels`` describes."""
    out: dict[int, set[int]] = {}
    for i, lab in enumerate(labels):
        out.setdefault(lab, set()).add(i)
    return {frozenset(g) for g in out.values()}


def test_same_look_in_one_camera_at_once_is_two_people() -> None:
    tracks = [info(1, "cam1", 0, 10, look(0)), info(2, "cam1", 5, 15, look(0))]
    labels, _, _ = associate(tracks, CFG)
    assert groups(labels) == {frozenset({0}), frozenset({1})}
    # the same two tracks one after the other are one person
    tracks = [info(1, "cam1", 0, 10, look(0)), info(2, "cam1", 11, 15, look(0))]
    labels, conf, _ = associate(tracks, CFG)
    assert groups(labels) == {frozenset({0, 1})} and conf == pytest.approx([1.0, 1.0])


def test_two_places_at_once_is_two_people() -> None:
    """Both cameras map to one ground frame: 30 m apart at the same moment cannot be one."""
    a = info(1, "cam1", 0, 10, look(0), path=((0, 0), (5, 0)))
    b = info(2, "cam2", 2, 12, look(0), path=((30, 0), (35, 0)))
    labels, _, _ = associate([a, b], CFG)
    assert len(set(labels)) == 2


def test_faster_than_walking_is_rejected_and_a_walk_is_not() -> None:
    """cam1 ends at x=5 at t=10; a track starting 40 m away 2 s later is impossible (3 m/s and 3
    m of slack allow 9 m), one starting 20 s later is a walk."""
    a = info(1, "cam1", 0, 10, look(0), path=((0, 0), (5, 0)))
    quick = info(2, "cam2", 12, 20, look(0), path=((45, 0), (50, 0)))
    slow = info(3, "cam2", 30, 40, look(0), path=((45, 0), (50, 0)))
    labels, _, _ = associate([a, quick], CFG)
    assert len(set(labels)) == 2
    labels, _, _ = associate([a, slow], CFG)
    assert len(set(labels)) == 1
    # the speed check can be switched off
    labels, _, _ = associate([a, quick], PersonSettings(max_speed_mps=0))
    assert len(set(labels)) == 1


def test_cameras_without_ground_planes_never_share_a_moment() -> None:
    """No homography: two cameras seeing the same look at once are two people, unless confident
    matches showed the pair of cameras to overlap."""
    a = info(1, "cam1", 0, 10, look(0))
    b = info(2, "cam2", 5, 15, near(0, 0.65))
    sim = float(a.embedding @ b.embedding)  # type: ignore[operator]
    assert CFG.link_similarity <= sim < CFG.confident_similarity
    labels, _, _ = associate([a, b], CFG)
    assert len(set(labels)) == 2
    # a confident match overlapping in time there: the cameras overlap, so the pair may link
    c = info(3, "cam1", 20, 30, look(1))
    d = info(4, "cam2", 25, 35, look(1))
    labels, _, _ = associate([a, b, c, d], CFG)
    assert groups(labels) == {frozenset({0, 1}), frozenset({2, 3})}


def test_overlapping_cameras_match_by_ground_position() -> None:
    """Two people walk side by side 1.5 m apart through the overlap of cam1 and cam2, dressed so
    alike that appearance pairs them the wrong way round; the ground positions pair them
    right."""
    p, q = ((0, 0), (10, 0)), ((0, 1.5), (10, 1.5))
    x, y = look(0), near(0, 0.6)
    tracks = [
        info(1, "cam1", 0, 10, x, path=p),
        info(2, "cam1", 0, 10, y, path=q),
        info(3, "cam2", 0, 10, y, path=p),  # person p, looking like q's cam1 track
        info(4, "cam2", 0, 10, x, path=q),
    ]
    labels, conf, _ = associate(tracks, CFG)
    assert groups(labels) == {frozenset({0, 2}), frozenset({1, 3})}
    assert (conf > 0).all() and (conf <= 1).all()


def test_doubled_track_of_one_person_in_one_camera_is_linked() -> None:
    """The tracker followed one person twice at once: the same spot, the same look."""
    tracks = [
        info(1, "cam1", 0, 10, look(0), path=((0, 0), (10, 0))),
        info(2, "cam1", 3, 6, look(0), path=((3, 0), (6, 0))),  # 1 m/s: the same spots
    ]
    labels, _, _ = associate(tracks, CFG)
    assert len(set(labels)) == 1


def test_two_people_at_one_spot_who_look_unalike_stay_two() -> None:
    """One behind the other at one spot (a group, seen along the line of sight): the spot alone
    does not make them one person doubled by the tracker."""
    tracks = [
        info(1, "cam1", 0, 10, look(0), path=((0, 0), (10, 0))),
        info(2, "cam1", 3, 6, near(1, 0.9, away=0), path=((3, 0), (6, 0))),  # cosine 0.44
    ]
    labels, _, _ = associate(tracks, CFG)
    assert len(set(labels)) == 2


def test_learned_transit_holds_both_ways() -> None:
    """Matches seen only from cam1 to cam2 teach the walk back too: a cam2 -> cam1 transit in
    that range gets the bonus, and a quicker one is rejected."""
    tracks = []
    for k in range(4):
        t0 = 100.0 * k
        tracks += [info(10 + k, "cam1", t0, t0 + 5, look(k)), info(20 + k, "cam2", t0 + 35,
                   t0 + 40, look(k))]  # fmt: skip
    back = info(99, "cam2", 500, 505, look(5))
    ok = info(98, "cam1", 535, 540, near(5, 0.5))  # 0.5 + the bonus reaches link_similarity
    quick = info(97, "cam1", 508, 512, look(5))
    labels, _, transit = associate([*tracks, back, ok], CFG)
    assert transit[("cam2", "cam1")] == transit[("cam1", "cam2")] == pytest.approx((30.0, 30.0))
    assert labels[-1] == labels[-2]
    labels, _, _ = associate([*tracks, back, ok], PersonSettings(transit_bonus=0.0))
    assert labels[-1] != labels[-2]
    labels, _, _ = associate([*tracks, back, quick], CFG)
    assert labels[-1] != labels[-2]


def test_learned_transit_rejects_a_quicker_transit() -> None:
    """Confident matches take 30 s from cam1 to cam2; a look-alike 5 s after is rejected (half
    the quickest learned transit, less 2 s, is 13 s), one 31 s after is linked."""
    tracks = []
    for k in range(4):  # four confident matches, cam1 -> cam2 in 30 s (no ground planes)
        t0 = 100.0 * k
        tracks += [info(10 + k, "cam1", t0, t0 + 5, look(k)), info(20 + k, "cam2", t0 + 35,
                   t0 + 40, look(k))]  # fmt: skip
    subject = info(99, "cam1", 500, 505, look(5))
    quick = info(98, "cam2", 510, 515, look(5))
    labels, _, transit = associate([*tracks, subject, quick], CFG)
    assert transit[("cam1", "cam2")] == pytest.approx((30.0, 30.0))
    assert labels[-1] != labels[-2]
    normal = info(97, "cam2", 536, 540, look(5))
    labels, _, _ = associate([*tracks, subject, normal], CFG)
    assert labels[-1] == labels[-2]


def test_locked_persons_keep_their_links_and_new_tracks_join() -> None:
    """Incremental: two stored persons look alike (they would merge in a rebuild) but stay
    apart; a new track joins the one it matches."""
    tracks = [
        info(1, "cam1", 0, 10, look(0), person=7),
        info(2, "cam1", 20, 30, look(0), person=8),
        info(3, "cam1", 40, 50, look(0)),
        info(4, "cam1", 60, 70, look(3)),
    ]
    labels, _, _ = associate(tracks, CFG)
    assert labels[0] == 7 and labels[1] == 8
    assert labels[2] in (7, 8)
    assert labels[3] < 0  # a new person
    assert associate([], CFG)[0] == []


def test_every_track_without_embedding_is_its_own_person() -> None:
    tracks = [info(1, "cam1", 0, 10, None), info(2, "cam2", 20, 30, None)]
    labels, conf, _ = associate(tracks, CFG)
    assert len(set(labels)) == 2 and conf.tolist() == [1.0, 1.0]


def test_store_update_is_incremental_and_rebuild_recomputes(session: Session) -> None:
    b = StoreBuilder(session)
    b.camera("cam1")
    b.camera("cam2")
    t1 = b.track("cam1", 0, 10, look(0), path=((0, 0), (10, 0)))
    t2 = b.track("cam2", 0, 10, near(0, 0.7), path=((0, 0), (10, 0)))
    t3 = b.track("cam1", 30, 40, look(1), path=((0, 5), (10, 5)))
    first = ensure_persons(session, CFG)
    assert first is not None and first.tracks == 3 and first.persons == 2
    session.expire_all()
    pid = repo.get_track(session=session, track_id=t1.id).person_id  # type: ignore[union-attr]
    assert repo.get_track(session=session, track_id=t2.id).person_id == pid  # type: ignore[union-attr]
    other = repo.get_track(session=session, track_id=t3.id).person_id  # type: ignore[union-attr]
    assert other != pid
    assert ensure_persons(session, CFG) is None  # nothing new: nothing to do
    # new footage: a track of the first person joins it, one of a stranger makes a new person
    t4 = b.track("cam2", 60, 70, look(0), path=((20, 0), (25, 0)))
    t5 = b.track("cam2", 60, 70, look(4), path=((20, 9), (25, 9)))
    second = ensure_persons(session, CFG)
    assert second is not None and not second.rebuilt and second.new_persons == 1
    session.expire_all()
    got = {t: repo.get_track(session=session, track_id=t).person_id for t in (1, 2, 3, 4, 5)}  # type: ignore[union-attr]
    assert got[t1.id] == got[t2.id] == got[t4.id] == pid and got[t3.id] == other
    assert got[t5.id] not in (pid, other)
    # other thresholds: the next query rebuilds
    third = ensure_persons(session, PersonSettings(link_similarity=0.6))
    assert third is not None and third.rebuilt
    state = repo.get_person_state(session=session)
    assert state is not None and state.generation == 1
    assert rebuild_persons(session, CFG).persons == 3


def test_empty_store_is_refused(session: Session) -> None:
    with pytest.raises(ReidTraceError, match="no tracks"):
        ensure_persons(session, CFG)
    assert update_persons(session, CFG).tracks == 0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="ground_match_m"):
        PersonSettings(ground_match_m=3, ground_conflict_m=1)
    with pytest.raises(ValueError, match="min_transit_samples"):
        PersonSettings(min_transit_samples=0)
    assert np.isfinite(PersonSettings().link_similarity)


def test_blocks_give_the_grouping_of_one_pass() -> None:
    """Three people, each seen 4 times in turn by two cameras: grouped half a block (4 tracks)
    at a time against the 4 labelled tracks nearest in time (which show all three), as in one
    pass; with a block too small to see everyone again, a person splits."""
    tracks = []
    for k in range(12):
        who = k % 3
        tracks.append(info(k + 1, f"cam{1 + k % 2}", 20.0 * k, 20.0 * k + 10, look(who)))
    one_pass, _, _ = associate(tracks, CFG)
    blocked, conf, _ = associate_in_blocks(tracks, PersonSettings(block_tracks=8))
    assert groups(blocked) == groups(one_pass) and len(groups(blocked)) == 3
    small, _, _ = associate_in_blocks(tracks, PersonSettings(block_tracks=4))
    assert len(groups(small)) > 3
    assert all(lab < 0 for lab in blocked) and (conf > 0).all()
    # locked persons keep their ids through the blocks
    locked = [info(100, "cam1", -50, -40, look(0), person=42), *tracks]
    labels, _, _ = associate_in_blocks(locked, PersonSettings(block_tracks=8))
    assert labels[0] == 42 and labels[1] == 42  # the first track of person 0 joined person 42
