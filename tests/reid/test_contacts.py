"""compute_contacts: constructed cases at and around the d and T thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from reid.contacts import ContactRow, Observations, compute_contacts, exposure_by_person
from reid.errors import ReidTraceError

T0 = 1_700_000_000.0  # UTC epoch seconds of frame 0


def _track(
    person: int,
    frames: range | np.ndarray,
    x: float | np.ndarray,
    y: float | np.ndarray = 0.0,
    camera: str | int = "c1",
    fps: float = 10.0,
    scale: float | None = None,
    t_offset: float = 0.0,
) -> dict[str, np.ndarray]:
    f = np.asarray(frames, dtype=np.int64)
    n = len(f)
    cols = {
        "person": np.full(n, person),
        "camera": np.array([camera] * n),
        "frame": f,
        "time": T0 + t_offset + f / fps,
        "x": np.broadcast_to(np.asarray(x, float), (n,)).copy(),
        "y": np.broadcast_to(np.asarray(y, float), (n,)).copy(),
        "dt": np.full(n, 1.0 / fps),
    }
    if scale is not None:
        cols["scale"] = np.full(n, scale)
    return cols


def _obs(*tracks: dict[str, np.ndarray]) -> Observations:
    keys = tracks[0].keys()
    return Observations(**{k: np.concatenate([t[k] for t in tracks]) for k in keys})


def _mirror(r: ContactRow) -> ContactRow:
    return ContactRow(
        r.contact,
        r.subject,
        r.camera,
        r.start,
        r.end,
        r.exposure_s,
        r.min_distance,
        r.total_exposure_s,
    )


def test_exactly_at_d_the_whole_time_is_a_contact() -> None:
    # 4.4 - 2.4 is 2.0000000000000004 in floats: "exactly 2 m" must still count (inclusive);
    # 60 frames at 10 fps = 6 s
    rows = compute_contacts(_obs(_track(1, range(60), 2.4), _track(2, range(60), 4.4)))
    assert rows == [
        ContactRow(1, 2, "c1", T0, T0 + 5.9, 6.0, pytest.approx(2.0), 6.0),
        ContactRow(2, 1, "c1", T0, T0 + 5.9, 6.0, pytest.approx(2.0), 6.0),
    ]
    assert isinstance(rows[0].camera, str)
    # and a diagonal 2 m: (0, 0) to (1.2, 1.6)
    diagonal = _obs(_track(1, range(60), 0.0), _track(2, range(60), 1.2, 1.6))
    assert len(compute_contacts(diagonal)) == 2


def test_just_beyond_d_is_not() -> None:
    assert compute_contacts(_obs(_track(1, range(60), 0.0), _track(2, range(60), 2.001))) == []


def test_exposure_exactly_t_counts_and_one_frame_less_does_not() -> None:
    # 50 frames x 0.1 s = 5 s exactly (counted as frames, not a drifting float sum)
    rows = compute_contacts(_obs(_track(1, range(50), 0.0), _track(2, range(50), 1.0)))
    assert [r.exposure_s for r in rows] == [5.0, 5.0]
    assert compute_contacts(_obs(_track(1, range(49), 0.0), _track(2, range(49), 1.0))) == []


def test_gaps_add_up() -> None:
    # close in frames 0-19 and 40-69 (20 + 30 = 50 frames = 5 s), 10 m apart in frames 20-39
    x = np.where((np.arange(70) >= 20) & (np.arange(70) < 40), 10.0, 0.5)
    rows = compute_contacts(_obs(_track(1, range(70), 0.0), _track(2, range(70), x)))
    assert len(rows) == 2
    r = rows[0]
    assert (r.subject, r.contact, r.exposure_s, r.min_distance) == (1, 2, 5.0, 0.5)
    assert (r.start, r.end) == (T0, pytest.approx(T0 + 6.9))


def test_exposure_split_over_two_cameras() -> None:
    # c1: 30 frames at 10 fps = 3 s; c2: 50 frames at 25 fps = 2 s; total 5 s -> contact
    obs = _obs(
        _track(1, range(30), 0.0, camera="c1"),
        _track(2, range(30), 1.0, camera="c1"),
        _track(1, range(500, 550), 3.0, camera="c2", fps=25.0),
        _track(2, range(500, 550), 4.5, camera="c2", fps=25.0),
    )
    rows = compute_contacts(obs)
    assert [(r.subject, r.contact, r.camera) for r in rows] == [
        (1, 2, "c1"),
        (1, 2, "c2"),
        (2, 1, "c1"),
        (2, 1, "c2"),
    ]
    assert [r.exposure_s for r in rows[:2]] == pytest.approx([3.0, 2.0])
    assert rows[1].start == pytest.approx(T0 + 20.0) and rows[1].min_distance == 1.5
    assert exposure_by_person(rows) == {(1, 2): pytest.approx(5.0), (2, 1): pytest.approx(5.0)}
    # either camera alone is not enough
    assert compute_contacts(obs, min_seconds=3.5) == rows
    assert compute_contacts(obs, min_seconds=5.1) == []


def test_passer_by_is_not_a_contact() -> None:
    # 1 and 2 stand 1 m apart for 10 s; 3 walks past 1 at 1 m/s along y = 0.5 (within 2 m of
    # person 1 for 3.9 s: |x| <= 1.94) and is never a contact
    walk = np.arange(100) * 0.1 - 5.0  # x from -5 to 4.9 m
    obs = _obs(
        _track(1, range(100), 0.0),
        _track(2, range(100), 0.0, 1.0),
        _track(3, range(100), walk, 0.5),
    )
    rows = compute_contacts(obs)
    assert {(r.subject, r.contact) for r in rows} == {(1, 2), (2, 1)}


def test_no_co_presence_no_contact() -> None:
    # the same spot, but at different frames: never in the same frame, so never within d
    obs = _obs(_track(1, range(60), 0.0), _track(2, range(100, 160), 0.0))
    assert compute_contacts(obs) == []


def test_box_height_units() -> None:
    # pixels with box heights 100 and 200: mean 150, 150 px apart = exactly 1.0 box height
    a = _track(1, range(50), 0.0, 400.0, scale=100.0)
    b = _track(2, range(50), 150.0, 400.0, scale=200.0)
    rows = compute_contacts(_obs(a, b), distance=1.0)
    assert [r.min_distance for r in rows] == [1.0, 1.0]
    # 151 px apart is 1.0067 box heights: beyond 1.0
    b["x"][:] = 151.0
    assert compute_contacts(_obs(a, b), distance=1.0) == []


def test_rows_are_symmetric_and_sorted() -> None:
    rng = np.random.default_rng(0)
    tracks = [
        _track(p, range(80), rng.uniform(0, 4, 80), rng.uniform(0, 4, 80), camera=cam)
        for cam in (1, 2)
        for p in (10, 3, 7, 12)
    ]
    rows = compute_contacts(_obs(*tracks), distance=2.5, min_seconds=3.0)
    assert rows and all(isinstance(r.camera, int) for r in rows)
    assert sorted(rows, key=lambda r: (r.subject, r.contact, r.start, r.camera)) == rows
    assert set(rows) == {_mirror(r) for r in rows}
    for r in rows:
        assert r.start <= r.end and r.exposure_s > 0 and r.min_distance <= 2.5


def test_bad_input() -> None:
    a = _track(1, range(5), 0.0)
    with pytest.raises(ValueError, match="two samples"):
        compute_contacts(_obs(a, _track(1, range(3), 1.0)))
    with pytest.raises(ValueError, match="row counts"):
        Observations(**{**a, "x": np.zeros(4)})
    with pytest.raises(ReidTraceError, match="distance"):
        compute_contacts(_obs(a), distance=0.0)
    with pytest.raises(ReidTraceError, match="min_seconds"):
        compute_contacts(_obs(a), min_seconds=-1.0)
    empty = Observations(*([np.zeros(0)] * 7))
    assert len(empty) == 0 and compute_contacts(empty) == []


def test_hundred_thousand_observations() -> None:
    # 20 people in a 10 m square for 5000 frames of one camera: 100k samples, ~1M pairs
    rng = np.random.default_rng(1)
    n_people, n_frames = 20, 5000
    frames = np.repeat(np.arange(n_frames), n_people)
    obs = Observations(
        person=np.tile(np.arange(n_people), n_frames),
        camera=np.zeros(len(frames), np.int64),
        frame=frames,
        time=T0 + frames / 25.0,
        x=rng.uniform(0, 10, len(frames)),
        y=rng.uniform(0, 10, len(frames)),
        dt=np.full(len(frames), 1 / 25.0),
    )
    rows = compute_contacts(obs)
    assert len(rows) == n_people * (n_people - 1)  # everyone meets everyone for > 5 s


def test_overlapping_cameras_count_each_moment_once() -> None:
    # two cameras see the same 3 s of the pair (one clock 0.05 s behind the other): 3.05 s of
    # real time, not 6 s, so with T = 5 s this is no contact; at T = 3 s it is.
    obs = _obs(
        _track(1, range(30), 0.0, camera="c1"),
        _track(2, range(30), 1.0, camera="c1"),
        _track(1, range(30), 0.0, camera="c2", t_offset=0.05),
        _track(2, range(30), 1.0, camera="c2", t_offset=0.05),
    )
    assert compute_contacts(obs) == []
    rows = compute_contacts(obs, min_seconds=3.0)
    assert len(rows) == 4
    assert {r.exposure_s for r in rows} == {3.0}
    assert exposure_by_person(rows)[(1, 2)] == pytest.approx(3.05)
