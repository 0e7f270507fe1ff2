"""Trajectories: visits in time order, tracks of one camera joined, ground paths decimated."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from indexer.query.persons import ensure_persons
from indexer.query.trajectory import person_tracks, trajectory, visits
from indexer.settings import PersonSettings
from reid.errors import ReidTraceError
from tests.indexer.query.helpers import StoreBuilder, look


@pytest.fixture
def store(session: Session) -> StoreBuilder:
    """One person through cam2 (no ground plane), then cam1 twice (a 3 s gap, then a 60 s
    absence), plus a stranger."""
    b = StoreBuilder(session)
    b.camera("cam1")
    b.camera("cam2", ground=False)
    b.track("cam1", 40, 50, look(0), path=((0, 0), (10, 0)))
    b.track("cam1", 53, 60, look(0), path=((13, 0), (20, 0)))
    b.track("cam2", 0, 20, look(0))
    b.track("cam1", 120, 125, look(0), path=((20, 0), (25, 0)))
    b.track("cam1", 40, 60, look(5), path=((0, 8), (10, 8)))
    ensure_persons(session, PersonSettings())
    return b


def test_visits_are_time_ordered_and_join_close_tracks(session: Session, store) -> None:
    pid, tracks = person_tracks(session, track_id=1)
    assert pid is not None and sorted(t.id for t in tracks) == [1, 2, 3, 4]
    got = visits(session, tracks, visit_gap_s=5.0)
    assert [(v.camera, v.track_ids) for v in got] == [
        ("cam2", [3]),
        ("cam1", [1, 2]),
        ("cam1", [4]),
    ]
    assert [v.enter for v in got] == sorted(v.enter for v in got)
    assert (got[1].leave - got[1].enter).total_seconds() == pytest.approx(20.0)
    # with the truth's 2 s rule the 3 s gap splits the visit
    assert len(visits(session, tracks, visit_gap_s=2.0)) == 4
    # same answer by person id, and by any of its tracks
    by_person = trajectory(session, person_id=pid)
    assert [v.track_ids for v in by_person] == [
        v.track_ids for v in trajectory(session, track_id=4)
    ]


def test_ground_path_one_point_a_second_where_there_is_a_ground_plane(session, store) -> None:
    _, tracks = person_tracks(session, track_id=1)
    got = visits(session, tracks, visit_gap_s=5.0)
    assert got[0].ground_path is None  # cam2 has no homography
    path = got[1].ground_path
    assert path is not None and len(path) == 11 + 8  # 40..50 s and 53..60 s, one a second
    times = [t for t, _, _ in path]
    assert times == sorted(times)
    assert path[0][1:] == pytest.approx((0.0, 0.0)) and path[-1][1:] == pytest.approx((20.0, 0.0))
    row = got[1].as_dict()
    assert set(row) == {"camera", "video_id", "track_ids", "enter", "leave", "confidence",
                        "ground_path"}  # fmt: skip
    assert row["enter"].endswith("+00:00") and len(row["ground_path"][0]) == 3
    assert 0 <= row["confidence"] <= 1


def test_unknown_ids_and_bad_options_are_refused(session: Session, store) -> None:
    with pytest.raises(ReidTraceError, match="no track with id 999"):
        trajectory(session, track_id=999)
    with pytest.raises(ReidTraceError, match="no person with id 999"):
        trajectory(session, person_id=999)
    _, tracks = person_tracks(session, track_id=1)
    with pytest.raises(ReidTraceError, match="visit_gap_s"):
        visits(session, tracks, visit_gap_s=-1)
