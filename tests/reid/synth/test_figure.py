"""The synthetic people: identity sampling (twins, validation) and the walking-figure renderer."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from reid.synth.appearance import TWIN_DETAILS, Appearance, sample_appearances
from reid.synth.figure import Sprite, render_figure, render_identity_sheet


def _apps(n: int = 20, seed: int = 0, **kw: float) -> list[Appearance]:
    return sample_appearances(n, np.random.default_rng(seed), **kw)


def _on_canvas(sp: Sprite, size: tuple[int, int] = (260, 160)) -> np.ndarray:
    """Composite on a fixed grey canvas at the foot point, so sprites of any size compare."""
    h, w = size
    out = np.full((h, w, 3), 128.0, np.float32)
    x0 = round(w / 2 - sp.foot[0])
    y0 = round(h - 10 - sp.foot[1])
    sh, sw = sp.alpha.shape
    a = sp.alpha[..., None]
    out[y0 : y0 + sh, x0 : x0 + sw] = sp.rgb * a + out[y0 : y0 + sh, x0 : x0 + sw] * (1 - a)
    return out


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


# ---- appearance -------------------------------------------------------------------------------


def test_sample_appearances_is_deterministic_and_json_friendly() -> None:
    a = _apps(30, seed=7)
    b = _apps(30, seed=7)
    assert a == b
    assert a != _apps(30, seed=8)
    for app in a:
        d = app.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert Appearance.from_dict(d) == app
        assert app.describe().endswith(("shoes", "backpack", "bag", "handbag", "cap", "beanie"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"n": -3},
        {"n": 2.5},
        {"n": 5, "hard_negative_frac": 1.5},
        {"n": 5, "hard_negative_frac": -0.1},
        {"n": 5, "difficulty": 2.0},
        {"n": 5, "difficulty": float("nan")},
    ],
)
def test_sample_appearances_validates_input(kwargs: dict) -> None:
    n = kwargs.pop("n")
    with pytest.raises(ValueError):
        sample_appearances(n, np.random.default_rng(0), **kwargs)


def test_twins_change_exactly_one_detail() -> None:
    apps = _apps(200, seed=3, hard_negative_frac=0.4)
    twins = [(i, a) for i, a in enumerate(apps) if a.twin_of >= 0]
    assert 0.3 * 200 <= len(twins) <= 0.5 * 200
    assert {a.twin_detail for _, a in twins} <= set(TWIN_DETAILS)
    assert len({a.look_key() for a in apps}) == len(apps)  # every look is distinct
    fields = {
        "bag": {"bag", "bag_color"},
        "hat": {"hat", "hat_color"},
        "top_pattern": {"top_pattern"},
        "shoe_color": {"shoe_color"},
        "hair_style": {"hair_style"},
        "hair_color": {"hair_color"},
        "sleeves": {"top_kind"},
        "bottom_color": {"bottom_color"},
    }
    for i, t in twins:
        assert 0 <= t.twin_of < i
        orig = apps[t.twin_of]
        assert orig.twin_of == -1
        diff = {
            f.name
            for f in dataclasses.fields(Appearance)
            if f.name not in ("twin_of", "twin_detail")
            and getattr(orig, f.name) != getattr(t, f.name)
        }
        assert diff and diff <= fields[t.twin_detail], (t.twin_detail, diff)


def test_difficulty_raises_twins_and_dark_clothing() -> None:
    easy = _apps(300, seed=1, difficulty=0.0)
    hard = _apps(300, seed=1, difficulty=1.0)
    assert sum(a.twin_of >= 0 for a in hard) > sum(a.twin_of >= 0 for a in easy)

    def dark_share(apps: list[Appearance]) -> float:
        return float(np.mean([sum(a.top_color) / 3 < 90 for a in apps]))

    assert dark_share(hard) > dark_share(easy)
    assert _apps(1)[0].twin_of == -1
    assert all(a.twin_of == -1 for a in _apps(50, hard_negative_frac=0.0))


# ---- figure -----------------------------------------------------------------------------------


def test_render_is_deterministic() -> None:
    app = _apps(5, seed=2)[3]
    kw = {"height_px": 120, "view_deg": 33.0, "phase": 0.41, "stride": 0.8, "seed": 5}
    a, b = render_figure(app, **kw), render_figure(app, **kw)
    assert a.rgb.dtype == np.uint8 and a.rgb.ndim == 3 and a.rgb.shape[2] == 3
    assert a.alpha.dtype == np.float32 and a.alpha.shape == a.rgb.shape[:2]
    assert a.rgb.tobytes() == b.rgb.tobytes()
    assert a.alpha.tobytes() == b.alpha.tobytes()
    assert a.foot == b.foot
    assert float(a.alpha.min()) >= 0.0 and float(a.alpha.max()) <= 1.0


@pytest.mark.parametrize("height", [30.0, 100.0, 250.0])
@pytest.mark.parametrize("stride", [0.0, 1.0])
def test_height_and_foot_point(height: float, stride: float) -> None:
    rng = np.random.default_rng(int(height) + int(stride))
    for app in _apps(12, seed=11):
        view, phase = float(rng.uniform(0, 360)), float(rng.uniform())
        sp = render_figure(app, height_px=height, view_deg=view, phase=phase, stride=stride)
        assert (sp.alpha > 0.5).sum() > 0.05 * height * height * 0.2
        top, bottom, _, _ = _extent(sp.alpha > 0.5)
        assert abs((bottom - top + 1) - height) <= 0.05 * height + 1, (app.describe(), view)
        _, bottom_any, left_any, right_any = _extent(sp.alpha > 0.0)
        fx, fy = sp.foot
        assert abs(fy - (bottom_any + 1)) <= 2.0
        assert left_any <= fx <= right_any + 1


def test_backpack_shows_more_from_behind() -> None:
    yellow = (30, 200, 235)
    app = Appearance(
        bag="backpack", bag_color=yellow, top_color=(60, 60, 60), hair_color=(20, 20, 20)
    )

    def bag_pixels(view: float) -> int:
        sp = render_figure(app, height_px=160, view_deg=view, phase=0.2, stride=0.5)
        d = np.abs(sp.rgb.astype(np.int32) - np.array(yellow)).sum(axis=2)
        return int(((d < 120) & (sp.alpha > 0.5)).sum())

    front, back, side = bag_pixels(0), bag_pixels(180), bag_pixels(90)
    assert back > 3 * front > 0  # the straps show from the front
    assert side > front


def test_identities_differ_in_mean_colour() -> None:
    apps = _apps(20, seed=4)
    means = []
    for app in apps:
        sp = render_figure(app, height_px=100, view_deg=30, phase=0.3)
        w = sp.alpha[..., None]
        means.append((sp.rgb * w).sum(axis=(0, 1)) / w.sum())
    m = np.array(means)
    d = np.linalg.norm(m[:, None] - m[None], axis=2)[np.triu_indices(len(m), 1)]
    assert (d > 2.0).mean() > 0.85


def test_twins_render_differently() -> None:
    apps = _apps(60, seed=9, hard_negative_frac=0.5)
    twins = [a for a in apps if a.twin_of >= 0]
    assert len(twins) >= 10
    for t in twins:
        orig = apps[t.twin_of]
        diff = 0.0
        for view in (0.0, 180.0):
            kw = {"height_px": 160, "view_deg": view, "phase": 0.3, "stride": 0.6}
            a = _on_canvas(render_figure(orig, **kw), (220, 140))
            b = _on_canvas(render_figure(t, **kw), (220, 140))
            diff += float(np.abs(a - b).sum())
        assert diff > 255.0 * 20, t.twin_detail


def test_stride_zero_ignores_phase_and_walking_moves_legs() -> None:
    app = _apps(3, seed=1)[0]

    def legs(phase: float, stride: float) -> np.ndarray:
        sp = render_figure(app, height_px=120, view_deg=90, phase=phase, stride=stride)
        canvas = _on_canvas(sp, (200, 160))
        return canvas[200 - 10 - 55 : 200 - 10]  # below the knees to the ground

    a, b = legs(0.0, 0.0), legs(0.37, 0.0)
    assert np.array_equal(a, b)
    w0, w1, w2 = legs(0.0, 1.0), legs(0.25, 1.0), legs(0.5, 1.0)
    assert np.abs(w0 - w1).mean() > 2.0
    assert np.abs(w1 - w2).mean() > 2.0
    assert np.abs(w0 - a).mean() > 2.0


def test_views_turn_smoothly_and_profile_is_narrower() -> None:
    app = Appearance()
    widths = {}
    for v in (0, 5, 90, 180, 270):
        sp = render_figure(app, height_px=150, view_deg=v, phase=0.0, stride=0.0)
        _, _, left, right = _extent(sp.alpha[:60] > 0.5)  # shoulders and head only
        widths[v] = right - left + 1
    assert widths[90] < 0.75 * widths[0] and widths[270] < 0.75 * widths[180]
    assert abs(widths[5] - widths[0]) <= 2
    a = _on_canvas(render_figure(app, height_px=150, view_deg=40, phase=0.2))
    b = _on_canvas(render_figure(app, height_px=150, view_deg=41, phase=0.2))
    c = _on_canvas(render_figure(app, height_px=150, view_deg=130, phase=0.2))
    assert np.abs(a - b).mean() < 0.25 * np.abs(a - c).mean()


def test_patterns_are_visible() -> None:
    base = Appearance(top_color=(40, 40, 40), top_color2=(230, 230, 230), top_kind="tshirt")
    stds = {}
    for pat in ("solid", "hstripes", "vstripes", "checks", "dots", "print"):
        sp = render_figure(
            dataclasses.replace(base, top_pattern=pat),
            height_px=100,
            view_deg=0,
            phase=0.0,
            stride=0.0,
        )
        chest = sp.rgb[sp.rgb.shape[0] * 22 // 100 : sp.rgb.shape[0] * 40 // 100]
        chest = chest[:, chest.shape[1] // 3 : 2 * chest.shape[1] // 3]
        stds[pat] = float(chest.astype(np.float32).std())
    for pat in ("hstripes", "vstripes", "checks", "dots", "print"):
        assert stds[pat] > stds["solid"] + 15.0, (pat, stds)


@pytest.mark.parametrize("height", [12.0, 13.5, 20.0])
def test_tiny_figures_render(height: float) -> None:
    for app in _apps(6, seed=12):
        sp = render_figure(app, height_px=height, view_deg=200, phase=0.6)
        assert sp.alpha.max() > 0.5
        assert sp.rgb.shape[0] <= height + 4


def test_render_validates_arguments() -> None:
    app = Appearance()
    for bad in (
        {"height_px": 0.0},
        {"height_px": float("nan")},
        {"stride": 1.5},
        {"stride": -0.1},
        {"view_deg": float("inf")},
    ):
        kw = {"height_px": 100.0, "view_deg": 0.0, "phase": 0.0, **bad}
        with pytest.raises(ValueError):
            render_figure(app, **kw)
    with pytest.raises(ValueError):
        Appearance(hat="tophat")
    with pytest.raises(ValueError):
        Appearance(skin=(300, 0, 0))
    with pytest.raises(ValueError):
        Appearance(height_m=3.5)
    # numpy ints (e.g. from an image) become plain ints, so looks compare and serialise alike
    a = Appearance(top_color=tuple(np.array([1, 2, 3], np.uint8)))
    assert a == Appearance(top_color=(1, 2, 3)) and type(a.top_color[0]) is int


def test_identity_sheet_layout() -> None:
    apps = _apps(3, seed=0)
    sheet = render_identity_sheet(apps, height_px=60, views=(0, 90), bg=(10, 20, 30))
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    cell_h, cell_w = sheet.shape[0] // 3, sheet.shape[1] // 2
    assert cell_h >= 60 and cell_w >= 30
    assert tuple(int(v) for v in sheet[0, 0]) == (10, 20, 30)
    for r in range(3):
        for col in range(2):
            cell = sheet[r * cell_h : (r + 1) * cell_h, col * cell_w : (col + 1) * cell_w]
            assert (np.abs(cell.astype(int) - (10, 20, 30)).sum(axis=2) > 30).sum() > 100
