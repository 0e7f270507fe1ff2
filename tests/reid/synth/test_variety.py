"""Domain-randomised crops (``--variety``): seeded, the default untouched, measurably varied."""

from __future__ import annotations

import filecmp
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.data.market import read_market
from reid.errors import ReidTraceError
from reid.synth.appearance import Appearance, sample_appearances
from reid.synth.crops import CropsConfig, generate_crops
from reid.synth.figure import (
    STYLE_BOTTOM_TEXTURES,
    STYLE_TOP_TEXTURES,
    FigureStyle,
    render_figure,
)
from reid.synth.variety import apply_response, sample_response, sample_style

SMALL = CropsConfig(seed=2, cameras=3, identities=12, images_per_camera=3)
VARIED = CropsConfig(seed=2, cameras=3, identities=12, images_per_camera=3, variety="high")

# sha256 over (relative path, bytes) of every file of the tiny default crops folder below, as the
# renderer wrote it before ``variety`` existed (commit fed0b87): the default must not move.
DEFAULT_DIGEST = "230c8b039b069124ac476d5de7dd2b32f87304bc4f7d4a2a1b928ad378985448"


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_default_crops_are_byte_identical_to_before(tmp_path) -> None:
    cfg = CropsConfig(seed=5, cameras=2, identities=4, images_per_camera=2)
    summary = generate_crops(tmp_path / "d", cfg, workers=1)
    assert "variety" not in summary["config"]
    assert "variety" not in json.loads((tmp_path / "d" / "world.json").read_text())["config"]
    assert _digest(tmp_path / "d") == DEFAULT_DIGEST


def test_varied_crops_are_deterministic_whatever_the_workers(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    summary = generate_crops(a, VARIED, workers=1)
    generate_crops(b, VARIED, workers=2)
    assert summary["config"]["variety"] == "high"
    assert _files(a) == _files(b)
    assert all(filecmp.cmp(a / f, b / f, shallow=False) for f in _files(a))
    data = read_market(a / "market")
    for q in data.query:  # still a valid Market folder: every query has a cross-camera match
        assert any(g.pid == q.pid and g.camid != q.camid for g in data.gallery)
    shapes = {cv2.imread(str(m.path)).shape[:2] for m in data.train}
    assert (128, 64) in shapes and len(shapes) >= 3  # Market, CUHK01- and VIPeR-like sizes


def _cross_camera_colour_spread(root: Path) -> float:
    """Mean over identities of the std, across cameras, of the crops' mean centre colour."""
    data = read_market(root / "market")
    per: dict[int, dict[int, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for m in [*data.train, *data.gallery, *data.query]:
        if m.pid > 0:
            img = cv2.imread(str(m.path)).astype(np.float32)
            h, w = img.shape[:2]
            centre = img[h // 4 : 3 * h // 4, int(0.3 * w) : int(0.7 * w)]
            per[m.pid][m.camid].append(centre.reshape(-1, 3).mean(axis=0))
    spread = [
        np.array([np.mean(v, axis=0) for v in cams.values()]).std(axis=0).mean()
        for cams in per.values()
        if len(cams) >= 2
    ]
    return float(np.mean(spread))


def test_variety_widens_how_much_a_person_changes_across_cameras(tmp_path) -> None:
    generate_crops(tmp_path / "d", SMALL, workers=1)
    generate_crops(tmp_path / "v", VARIED, workers=1)
    plain = _cross_camera_colour_spread(tmp_path / "d")
    varied = _cross_camera_colour_spread(tmp_path / "v")
    assert varied > 1.5 * plain, (plain, varied)


def test_bad_variety_is_refused(tmp_path) -> None:
    with pytest.raises(ReidTraceError, match="variety"):
        generate_crops(tmp_path / "c", CropsConfig(identities=4, variety="extreme"))
    assert not (tmp_path / "c").exists()


def _solid(app: Appearance) -> Appearance:
    from dataclasses import replace

    return replace(app, top_pattern="solid", bottom_pattern="solid", bottom_kind="trousers")


@pytest.mark.parametrize("top", STYLE_TOP_TEXTURES[1:])
def test_every_top_texture_shows_on_a_solid_top(top: str) -> None:
    app = _solid(sample_appearances(1, np.random.default_rng(3))[0])
    style = FigureStyle(top_texture=top, top_colors=((255, 0, 0), (0, 255, 0), (0, 0, 255)), seed=4)
    kw = {"height_px": 160.0, "view_deg": 20.0, "phase": 0.3, "seed": 1}
    plain, styled = render_figure(app, **kw), render_figure(app, style=style, **kw)
    assert plain.rgb.shape == styled.rgb.shape
    assert np.array_equal(plain.alpha, styled.alpha)  # texture, not a new silhouette
    changed = np.abs(plain.rgb.astype(int) - styled.rgb.astype(int)).sum(axis=2) > 60
    assert changed.sum() > 20, top


@pytest.mark.parametrize("bottom", STYLE_BOTTOM_TEXTURES[1:])
def test_every_bottom_texture_shows_on_solid_trousers(bottom: str) -> None:
    app = _solid(sample_appearances(1, np.random.default_rng(3))[0])
    style = FigureStyle(bottom_texture=bottom, bottom_colors=((250, 250, 0), (0, 250, 250)))
    kw = {"height_px": 160.0, "view_deg": 20.0, "phase": 0.3, "seed": 1}
    plain, styled = render_figure(app, **kw), render_figure(app, style=style, **kw)
    changed = np.abs(plain.rgb.astype(int) - styled.rgb.astype(int)).sum(axis=2) > 60
    assert changed.sum() > 20, bottom


def test_a_patterned_top_keeps_its_pattern_under_a_style() -> None:
    """Twins that differ in their top pattern must still differ when they share a style."""
    from dataclasses import replace

    app = replace(
        _solid(sample_appearances(1, np.random.default_rng(3))[0]), top_pattern="hstripes"
    )
    style = FigureStyle(top_texture="tartan", top_colors=((255, 0, 0),) * 3)
    kw = {"height_px": 160.0, "view_deg": 20.0, "phase": 0.3, "seed": 1}
    assert np.array_equal(render_figure(app, **kw).rgb, render_figure(app, style=style, **kw).rgb)


def test_style_and_response_are_seeded() -> None:
    app = sample_appearances(1, np.random.default_rng(0))[0]
    assert sample_style(np.random.default_rng(7), app, 1.0) == sample_style(
        np.random.default_rng(7), app, 1.0
    )
    r = sample_response(np.random.default_rng(1), 1.0)
    img = np.full((40, 20, 3), 120, np.uint8)
    a = apply_response(img, r, np.random.default_rng(2))
    b = apply_response(img, r, np.random.default_rng(2))
    assert np.array_equal(a, b)
    assert sample_response(np.random.default_rng(1), 0.0).wb == (1.0, 1.0, 1.0)


def test_bench_refuses_a_bad_variety_before_rendering() -> None:
    from reid.synth.bench import bench_synth

    with pytest.raises(ReidTraceError, match="variety"):
        bench_synth(workers=1, crops_identities=2, variety="max")
