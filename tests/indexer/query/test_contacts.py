"""find_contacts on constructed tracks written through the store.

Cameras with a homography map 10 px to 1 m (``foot = box bottom-centre / 10``); people are boxes
50 px tall standing at a given ground x (metres) and y = 10 m; 10 fps, so 50 frames = 5 s. The
thresholds are inclusive, as in ``reid.contacts``: exactly d apart counts, exactly T seconds
counts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from indexer.query.contacts import Contacts, find_contacts
from indexer.store import migrate, repo
from indexer.store.db import make_engine
from indexer.store.models import Base
from reid.detections import Detections
from reid.errors import ReidTraceError

START = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
FPS = 10.0
METRE = [[0.1, 0, 0], [0, 0.1, 0], [0, 0, 1]]  # 10 px = 1 m


@pytest.fixture
def session() -> Iterator[Session]:
    eng = make_engine("sqlite://")
    Base.metadata.create_all(eng)
    with Session(eng, expire_on_commit=False) as s:
        yield s
    eng.dispose()


class World:
    """Cameras, one video each, and tracks of people standing or walking on the ground."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.videos: dict[str, int] = {}
        self.next_no: dict[str, int] = {}

    def camera(
        self,
        name: str,
        *,
        homography: list[list[float]] | None = METRE,
        kind: str = "video",
        fps: float = FPS,
        start: datetime = START,
        frames: int = 600,
    ) -> None:
        cam = repo.get_or_create_camera(
            session=self.session,
            name=name,
            width=1000,
            height=1000,
            fps=fps,
            homography=homography,
            ground_units="m" if homography is not None else None,
        )
        video = repo.create_video(
            session=self.session,
            camera_id=cam.id,
            path=f"/{name}.mp4",
            content_hash=f"{name}@{start.isoformat()}".encode().hex()[:64].ljust(64, "0"),
            start_time=start,
            fps=fps,
            num_frames=frames,
            width=1000,
            height=1000,
            kind=kind,
        )
        self.videos[name] = video.id
        self.next_no[name] = 1

    def track(
        self,
        camera: str,
        frames: Sequence[int] | range,
        x: float | Sequence[float],
        *,
        y: float = 10.0,
        height: float = 50.0,
        confidence: float = 0.9,
        px: bool = False,
    ) -> int:
        """A track standing (or walking, ``x`` per frame) at ground ``x`` metres (pixels with
        ``px``); returns its track id."""
        f = np.asarray(list(frames), np.int64)
        scale = 1.0 if px else 10.0
        cx = np.broadcast_to(np.asarray(x, np.float64) * scale, f.shape)
        bottom = np.full(len(f), y * scale)
        xyxy = np.stack([cx - 10, bottom - height, cx + 10, bottom], axis=1)
        no = self.next_no[camera]
        self.next_no[camera] += 1
        dets = Detections(
            xyxy=xyxy,
            confidence=np.full(len(f), confidence),
            frame_idx=f,
            track_id=np.full(len(f), no),
        )
        repo.commit_chunk(
            session=self.session,
            video_id=self.videos[camera],
            frames_done=int(f.max()) + 1,
            detections=dets,
        )
        (tid,) = [
            t.id
            for t in repo.tracks_for_video(session=self.session, video_id=self.videos[camera])
            if t.track_no == no
        ]
        return tid


@pytest.fixture
def world(session: Session) -> World:
    w = World(session)
    w.camera("cam1")
    return w


def _by_track(answer: Contacts) -> dict[tuple[int, ...], float]:
    return {c.track_ids: c.exposure_s for c in answer.rows}


def test_exactly_at_d_and_exactly_t_is_a_contact(world: World, session: Session) -> None:
    subject = world.track("cam1", range(0, 100), 10.0)
    at_d = world.track("cam1", range(0, 50), 12.0)  # 2.0 m for 50 frames = 5.0 s
    short = world.track("cam1", range(50, 99), 8.0)  # 2.0 m for 49 frames = 4.9 s
    beyond = world.track("cam1", range(0, 100), 12.1)  # 2.1 m the whole time
    answer = find_contacts(session, [subject], person_of={}, bridge_s=0)
    assert _by_track(answer) == {(at_d,): pytest.approx(5.0)}
    (c,) = answer.rows
    assert c.closest == pytest.approx(2.0) and c.units == "m" and c.order == 1
    assert c.person_id is None  # a track without a person is its own person
    assert c.first == START and c.last == START + timedelta(seconds=4.9)
    assert c.per_camera == (("cam1", pytest.approx(5.0)),)
    # exclusive of T would drop it; a stricter d drops it too
    assert find_contacts(session, [subject], person_of={}, min_seconds=5.1).rows == ()
    assert find_contacts(session, [subject], person_of={}, distance=1.99).rows == ()
    # a looser T lets the short one in, ranked after the longer exposure
    loose = find_contacts(session, [subject], person_of={}, min_seconds=4.9, bridge_s=0)
    assert [r.track_ids for r in loose.rows] == [(at_d,), (short,)]
    assert beyond not in {t for r in loose.rows for t in r.track_ids}
    assert answer.definition.to_json() == {
        "distance": 2.0,
        "units": "m",
        "min_seconds": 5.0,
        "depth": 1,
        "window_s": None,
    }


def test_gaps_add_up_and_short_ones_are_bridged(world: World, session: Session) -> None:
    subject = world.track("cam1", range(0, 200), 10.0)
    # within 1 m for 0-29 and 60-79 (a 3 s gap: longer than bridge_s): 30 + 20 frames = 5 s
    a1 = world.track("cam1", range(0, 30), 11.0)
    a2 = world.track("cam1", range(60, 80), 11.0)
    # 100-119 and 130-159 with a 1 s gap inside one track: bridged, 60 frames = 6 s
    b = world.track("cam1", [*range(100, 120), *range(130, 160)], 9.0, confidence=0.0)
    person_of = {a1: 7, a2: 7}
    answer = find_contacts(session, [subject], person_of=person_of)
    rows = {c.person_id or c.track_ids[0]: c for c in answer.rows}
    assert rows[7].exposure_s == pytest.approx(5.0) and rows[7].track_ids == (a1, a2)
    assert rows[b].exposure_s == pytest.approx(6.0)  # interpolated boxes (conf 0) count too
    unbridged = find_contacts(session, [subject], person_of=person_of, bridge_s=0)
    assert {c.person_id or c.track_ids[0]: c.exposure_s for c in unbridged.rows} == {
        7: pytest.approx(5.0),
        b: pytest.approx(5.0),
    }
    # evidence comes from frames where both were seen, never from bridged positions
    frames = [e.frame_idx for e in rows[b].evidence]
    assert frames == sorted(frames) and not set(frames) & set(range(120, 130))


def test_two_overlapping_cameras_count_each_moment_once(world: World, session: Session) -> None:
    world.camera("cam2")
    s1 = world.track("cam1", range(0, 40), 10.0)
    c1 = world.track("cam1", range(0, 40), 11.0)
    s2 = world.track("cam2", range(0, 60), 10.0)
    c2 = world.track("cam2", range(0, 60), 11.5)
    person_of = {s1: 1, s2: 1, c1: 2, c2: 2}
    answer = find_contacts(session, [s1, s2], person_of=person_of)
    (c,) = answer.rows
    assert c.person_id == 2 and c.track_ids == (c1, c2)
    assert c.exposure_s == pytest.approx(6.0)  # 0-6 s, not 4 + 6
    assert c.per_camera == (("cam2", pytest.approx(6.0)), ("cam1", pytest.approx(4.0)))
    assert c.closest == pytest.approx(1.0)
    assert {e.camera for e in c.evidence} == {"cam1", "cam2"}
    assert all(len([e for e in c.evidence if e.camera == cam]) <= 3 for cam in ("cam1", "cam2"))
    # 4 s in cam1 alone is not enough
    assert find_contacts(session, [s1], person_of={c1: 2}).rows == ()


def test_evidence_is_first_closest_last(world: World, session: Session) -> None:
    subject = world.track("cam1", range(0, 80), 10.0)
    walk = 11.1 + np.abs(np.arange(80) - 40) * 0.02  # 11.9 m -> 11.1 m (frame 40) -> 11.9 m
    other = world.track("cam1", range(0, 80), walk)
    (c,) = find_contacts(session, [subject], person_of={}).rows
    assert c.track_ids == (other,)
    assert [e.frame_idx for e in c.evidence] == [0, 40, 79]
    assert c.evidence[1].distance == pytest.approx(1.1, abs=1e-4)
    assert c.closest == pytest.approx(1.1, abs=1e-4)
    assert c.evidence[0].subject_box == pytest.approx((90, 50, 110, 100))


def test_no_homography_measures_in_box_heights(session: Session) -> None:
    w = World(session)
    w.camera("side", homography=None)
    subject = w.track("side", range(0, 60), 100.0, y=500.0, height=100.0, px=True)
    near = w.track("side", range(0, 60), 200.0, y=500.0, height=100.0, px=True)  # 1.0 heights
    w.track("side", range(0, 60), 0.0, y=501.0, height=100.0, px=True)  # 1.005 heights
    answer = find_contacts(session, [subject], person_of={})
    (c,) = answer.rows
    assert c.track_ids == (near,) and c.units == "box_heights" and c.closest == pytest.approx(1.0)
    assert answer.definition.units == "box_heights" and answer.definition.distance == 1.0
    assert answer.notes == (
        "side has no ground homography: contacts there are within 1 box heights",
    )
    # with no metre camera, --distance is in box heights
    assert len(find_contacts(session, [subject], person_of={}, distance=1.01).rows) == 2


def test_crops_gallery_is_co_appearance_in_time(session: Session) -> None:
    w = World(session)
    w.camera("market-c1", homography=None, kind="crops", fps=25.0)
    # one crop per second for 6 s; each crop is its own track, one person per identity
    subject = [w.track("market-c1", [f], 0.0) for f in range(0, 151, 25)]
    together = [w.track("market-c1", [f + 5], 40.0) for f in range(0, 151, 25)]
    later = [w.track("market-c1", [f + 400], 0.0) for f in range(0, 151, 25)]
    person_of = {**dict.fromkeys(subject, 1), **dict.fromkeys(together, 2)}
    person_of |= dict.fromkeys(later, 3)
    answer = find_contacts(session, subject, person_of=person_of)
    (c,) = answer.rows
    assert c.person_id == 2 and c.units == "co-appearance" and c.closest is None
    assert c.track_ids == tuple(together)
    # presence windows [t - 1, t + 1) for t = 0 .. 6 s: [-1, 7) and [-0.8, 7.2); on the 0.5 s
    # grid both are cells -2 .. 13, so the whole 8 s
    assert c.exposure_s == pytest.approx(8.0)
    assert all(e.distance is None for e in c.evidence) and len(c.evidence) == 2
    assert answer.definition.units == "co-appearance" and answer.definition.window_s == 2.0
    assert answer.definition.distance is None
    assert "co-appearances within 2 s" in answer.notes[0]
    narrow = find_contacts(session, subject, person_of=person_of, window_s=0.1, min_seconds=0)
    assert narrow.rows == ()  # 0.2 s apart never share a 0.1 s window


def test_second_order_contacts(world: World, session: Session) -> None:
    a = world.track("cam1", range(0, 60), 10.0)
    b = world.track("cam1", range(0, 200), np.r_[np.full(60, 11.0), np.full(140, 30.0)])
    c = world.track("cam1", range(100, 200), 31.0)  # meets b later, never a
    d = world.track("cam1", range(120, 200), 10.0)  # stands where a stood, after a left
    person_of = {a: 1, b: 2, c: 3, d: 4}
    first = find_contacts(session, [a], person_of=person_of)
    assert [(r.person_id, r.order) for r in first.rows] == [(2, 1)]
    second = find_contacts(session, [a], person_of=person_of, depth=2)
    assert [(r.person_id, r.order, r.via_person_id) for r in second.rows] == [
        (2, 1, None),
        (3, 2, 2),
    ]
    assert second.rows[1].exposure_s == pytest.approx(10.0)
    assert second.to_json()["contact_definition"]["depth"] == 2


def test_the_subjects_own_person_is_never_a_contact(world: World, session: Session) -> None:
    t1 = world.track("cam1", range(0, 100), 10.0)
    t2 = world.track("cam1", range(0, 100), 10.5)  # the same person, tracked twice
    other = world.track("cam1", range(0, 100), 11.0)
    answer = find_contacts(session, [t1], person_of={t1: 5, t2: 5, other: 6})
    assert [r.person_id for r in answer.rows] == [6]


def test_json_matches_the_trace_schema(world: World, session: Session) -> None:
    subject = world.track("cam1", range(0, 60), 10.0)
    world.track("cam1", range(0, 60), 11.0)
    doc = find_contacts(session, [subject], person_of={}).to_json()
    assert set(doc) == {"contact_definition", "contacts", "notes"}
    (row,) = doc["contacts"]
    assert list(row) == [
        "person_id", "track_ids", "order", "via_person_id", "units", "exposure_s", "per_camera",
        "closest", "first", "last", "thumbnail_sighting_id", "evidence",
    ]  # fmt: skip
    assert row["first"] == "2024-05-01T08:00:00.000000+00:00"
    assert list(row["per_camera"][0]) == ["camera", "exposure_s"]
    assert list(row["evidence"][0]) == [
        "camera", "video_id", "frame_idx", "time", "subject_box", "contact_box", "distance",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"distance": -1.0}, "distance must be a number > 0"),
        ({"distance": 0.0}, "distance must be a number > 0"),
        ({"distance": float("nan")}, "distance must be a number > 0"),
        ({"min_seconds": -1.0}, "min_seconds must be a number >= 0"),
        ({"depth": 0}, "depth must be an integer from 1 to 3"),
        ({"depth": 4}, "depth must be an integer from 1 to 3"),
        ({"window_s": 0.0}, "window_s must be a number > 0"),
    ],
)
def test_bad_parameters_are_refused(world: World, session: Session, kwargs, match) -> None:
    subject = world.track("cam1", range(0, 10), 10.0)
    with pytest.raises(ReidTraceError, match=match) as err:
        find_contacts(session, [subject], person_of={}, **kwargs)
    assert err.value.hint


def test_unknown_and_bad_track_ids_are_refused(world: World, session: Session) -> None:
    subject = world.track("cam1", range(0, 10), 10.0)
    with pytest.raises(ReidTraceError, match=r"unknown track id\(s\): 999") as err:
        find_contacts(session, [subject, 999], person_of={})
    assert err.value.status == 404
    for bad in ([], [0], ["7"], [True]):
        with pytest.raises(ReidTraceError):
            find_contacts(session, bad, person_of={})


def test_candidates_come_from_the_overlapping_videos_only(session: Session) -> None:
    # two videos of one camera, an hour apart: the second one's tracks are never read
    w = World(session)
    w.camera("cam1")
    subject = w.track("cam1", range(0, 60), 10.0)
    near = w.track("cam1", range(0, 60), 11.0)
    later = World(session)
    later.camera("cam1", start=START + timedelta(hours=1))
    later.track("cam1", range(0, 60), 11.0)
    answer = find_contacts(session, [subject], person_of={})
    assert [r.track_ids for r in answer.rows] == [(near,)]


def test_postgresql_gives_the_same_answer(pg_url: str) -> None:
    migrate.upgrade(pg_url)
    engine: Engine = make_engine(pg_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            w = World(session)
            w.camera("cam1")
            w.camera("cam2")
            s1 = w.track("cam1", range(0, 40), 10.0)
            c1 = w.track("cam1", range(0, 40), 12.0)
            s2 = w.track("cam2", range(0, 60), 10.0)
            c2 = w.track("cam2", range(0, 60), 11.5)
            answer = find_contacts(session, [s1, s2], person_of={s1: 1, s2: 1, c1: 2, c2: 2})
            (c,) = answer.rows
            assert c.person_id == 2 and c.exposure_s == pytest.approx(6.0)
            assert c.closest == pytest.approx(1.5)
    finally:
        engine.dispose()
