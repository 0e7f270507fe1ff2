"""Articulated walking people as alpha sprites, from an ``Appearance``, a view and a gait phase.

Why a 3D skeleton and not 2D templates: the same identity must stay consistent across cameras that
see it from any angle, and a COCO-trained detector must fire on it, so proportions (head 1/7.5 of
the height), swinging limbs and a silhouette that narrows in profile matter more than detail.

How: joints live in body coordinates (lateral = the person's right, forward, up), legs and arms
swing in the forward-up plane by the walk phase, the body turns about the vertical by
``view_deg`` and is projected orthographically. Every part becomes a polygon with a depth; parts
are drawn back to front into a supersampled *label* map (material ids) and a *shade* map
(lighting, outlines, folds, cast shadows). Patterns and denim are relabelling/noise on those
maps, colours come from one LUT, and an INTER_AREA downsample gives anti-aliased rgb + alpha.
Everything is a pure function of the arguments, so the same call gives identical bytes.

Known limits: the camera is horizontal (no view from above: tops of bags and shoulders never
show), there is no self-shadowing beyond a soft arm shadow on the torso, and hands are mitts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from reid.synth.appearance import Appearance

__all__ = [
    "STYLE_BOTTOM_TEXTURES",
    "STYLE_TOP_TEXTURES",
    "FigureStyle",
    "Sprite",
    "render_figure",
    "render_identity_sheet",
]


@dataclass
class Sprite:
    """One rendered person: paste ``rgb`` by ``alpha`` so ``foot`` lands on the ground point."""

    rgb: np.ndarray  # (h, w, 3) uint8, BGR, not premultiplied
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    foot: tuple[float, float]  # (x, y) px inside the sprite: between the feet, at ground level


# Material ids of the label map. Clothing ids are contiguous (fabric noise is applied to them).
M_BG, M_SKIN, M_HAIR, M_EYE, M_LIP = 0, 1, 2, 3, 4
M_TOP, M_TOP2, M_PAT, M_MIX, M_PRINT, M_PRINT2 = 5, 6, 7, 8, 9, 10
M_BOTTOM, M_BOTTOM2, M_BOTTOM3, M_HAT = 11, 12, 13, 14
M_SHOE, M_SOLE, M_BAG, M_STRAP = 15, 16, 17, 18
_CLOTH_LO, _CLOTH_HI = M_TOP, M_HAT
# Materials only a FigureStyle uses (domain-randomised crops): sleeves, top and bottom textures.
M_SLEEVE, M_TEX_A, M_TEX_B, M_TEX_C, M_BTEX_A, M_BTEX_B = 19, 20, 21, 22, 23, 24
_STYLE_LO, _STYLE_HI = M_SLEEVE, M_BTEX_B

STYLE_TOP_TEXTURES = (
    "none", "tartan", "pinstripe", "gingham", "breton", "camo", "speckle", "yoke", "chest_band",
    "logo",
)  # fmt: skip
STYLE_BOTTOM_TEXTURES = ("none", "plaid", "pinstripe", "camo", "cuffs")


@dataclass(frozen=True)
class FigureStyle:
    """Extra clothing detail for domain-randomised crops (``reidtrace synth --variety``).

    Why apart from :class:`Appearance`: the default world must render byte-identically, and its
    identities' descriptions stay what they were; a style only adds texture on top. The top
    texture replaces a *solid* top only, the bottom texture a *solid* (non-denim) bottom only,
    so a look-alike twin that differs in its top pattern still differs. Colours are BGR.
    """

    top_texture: str = "none"
    top_colors: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (0, 0, 0), (0, 0, 0))
    top_scale: float = 1.0  # pattern period relative to the default stripe width
    bottom_texture: str = "none"
    bottom_colors: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (0, 0, 0))
    sleeve_color: tuple[int, int, int] | None = None  # sleeves in another colour (raglan, jacket)
    bag_color: tuple[int, int, int] | None = None  # overrides the appearance's bag colour
    fabric_gain: float = 1.0  # strength of fabric noise (1 = the default renderer's)
    folds: float = 0.0  # strength of low-frequency shading folds, 0..1
    seed: int = 0  # offsets of the noise-based textures

    def __post_init__(self) -> None:
        if self.top_texture not in STYLE_TOP_TEXTURES:
            raise ValueError(f"FigureStyle.top_texture={self.top_texture!r}")
        if self.bottom_texture not in STYLE_BOTTOM_TEXTURES:
            raise ValueError(f"FigureStyle.bottom_texture={self.bottom_texture!r}")
        if len(self.top_colors) != 3 or len(self.bottom_colors) != 2:
            raise ValueError("FigureStyle: 3 top colours and 2 bottom colours")
        if not (0.0 <= self.fabric_gain <= 6.0 and 0.0 <= self.folds <= 1.0):
            raise ValueError("FigureStyle: fabric_gain in [0, 6], folds in [0, 1]")


# Part kinds.
_FILL, _FLAT, _SHADOW, _FOLD, _LINE, _SOFT = range(6)

STANCE_STRIDE = 0.3  # the leg spread of a standing person, as a share of a walking stride
_STANCE_SPLAY = math.sin(math.radians(4.0))
# Form shading of a filled part: its outer band and its rim, relative to the lit core. Cloth
# on a limb or torso turns away from the light toward the silhouette; flatter shading read as
# cardboard cut-outs to a COCO detector.
_SHADE_BASE, _SHADE_RIM = 0.62, 0.45
_SHIFT = 3  # fixed-point bits for sub-pixel polygon vertices
_FP = float(1 << _SHIFT)

# Body proportions in units of standing height (anthropometric averages).
_HIP_U = 0.530
_THIGH = 0.245
_SHIN = 0.247
_ANKLE_U = 0.038
_SHOULDER_U = 0.792
_UPPER_ARM = 0.165
_FOREARM = 0.148
_HAND = 0.084
_HEAD_HH = 1.0 / 7.5 / 2.0  # head half height
_HEAD_A = 0.045  # head half width (lateral)
_HEAD_B = 0.053  # head half depth (forward)
_HEAD_F = 0.010  # head centre sits slightly forward of the neck

_CAP_ANG = np.linspace(0.0, math.pi, 7)
_CAP_C = tuple(float(v) for v in np.cos(_CAP_ANG))
_CAP_S = tuple(float(v) for v in np.sin(_CAP_ANG))
_CAP_CA, _CAP_SA = np.array(_CAP_C), np.array(_CAP_S)
_CIRC_ANG = np.linspace(0.0, 2.0 * math.pi, 28, endpoint=False)
_CIRC = np.stack([np.cos(_CIRC_ANG), np.sin(_CIRC_ANG)], axis=1)
# Egg: a head outline narrowing toward the chin (image y grows downward).
_EGG = _CIRC * np.stack([1.0 - 0.16 * np.clip(_CIRC[:, 1], 0, 1), np.ones(len(_CIRC))], axis=1)
_CURLY = _CIRC * (1.0 + 0.055 * np.cos(11.0 * _CIRC_ANG))[:, None]


class _Parts:
    """Depth-tagged drawing commands, collected before the canvas size is known."""

    def __init__(self) -> None:
        self.items: list[tuple[float, int, int, np.ndarray, int, float, float]] = []

    def add(
        self,
        depth: float,
        kind: int,
        pts: np.ndarray,
        mat: int = 0,
        shade: float = 1.0,
        width: float = 0.0,
    ) -> None:
        self.items.append((depth, len(self.items), kind, pts, mat, shade, width))


@lru_cache(maxsize=512)
def _limb_coef(ts: tuple[float, ...], rs: tuple[float, ...]) -> np.ndarray:
    """Outline of a tapered capsule as coefficients of (p1 - p0, normal, unit axis)."""
    rows = [(t, r, 0.0) for t, r in zip(ts, rs, strict=True)]
    rows += [(1.0, rs[-1] * cc, rs[-1] * sc) for cc, sc in zip(_CAP_C, _CAP_S, strict=True)]
    rows += [(t, -r, 0.0) for t, r in zip(ts[::-1], rs[::-1], strict=True)]
    rows += [(0.0, -rs[0] * cc, -rs[0] * sc) for cc, sc in zip(_CAP_C, _CAP_S, strict=True)]
    return np.array(rows)


def _limb(
    p0: tuple[float, ...], p1: tuple[float, ...], ts: tuple[float, ...], rs: tuple[float, ...]
) -> np.ndarray:
    """Tapered capsule from p0 to p1 (2D); radius ``rs[i]`` at fraction ``ts[i]`` along it."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    length = math.hypot(dx, dy)
    if length < 1e-9:
        ux, uy = 0.0, 1.0
    else:
        ux, uy = dx / length, dy / length
    basis = np.array([[dx, dy], [-uy, ux], [ux, uy]])
    out = _limb_coef(ts, rs) @ basis
    out[:, 0] += p0[0]
    out[:, 1] += p0[1]
    return out


def _chain(pts: list[tuple[float, ...]], rs: tuple[float, ...]) -> np.ndarray:
    """One outline for a bent limb (hip-knee-ankle): mitred joints, round ends, no seams."""
    m = len(pts)
    nrm = []
    for i in range(m - 1):
        dx, dy = pts[i + 1][0] - pts[i][0], pts[i + 1][1] - pts[i][1]
        ln = math.hypot(dx, dy)
        nrm.append((-dy / ln, dx / ln) if ln > 1e-9 else (1.0, 0.0))
    side1, side2 = [], []
    for i in range(m):
        if i == 0 or i == m - 1:
            nx, ny = nrm[0] if i == 0 else nrm[-1]
        else:
            ax, ay = nrm[i - 1][0] + nrm[i][0], nrm[i - 1][1] + nrm[i][1]
            ln = max(math.hypot(ax, ay), 1e-9)
            ax, ay = ax / ln, ay / ln
            k = 1.0 / max(ax * nrm[i][0] + ay * nrm[i][1], 0.5)  # mitre
            nx, ny = ax * k, ay * k
        r = rs[i]
        x, y = pts[i][0], pts[i][1]
        side1.append((x + nx * r, y + ny * r))
        side2.append((x - nx * r, y - ny * r))
    n1, n0 = nrm[-1], nrm[0]
    r1, r0 = rs[-1], rs[0]
    # round ends: the axis direction is the normal turned back by 90 degrees
    cap1 = np.array(pts[-1][:2]) + r1 * (
        _CAP_CA[:, None] * np.array(n1) + _CAP_SA[:, None] * np.array((n1[1], -n1[0]))
    )
    cap0 = np.array(pts[0][:2]) - r0 * (
        _CAP_CA[:, None] * np.array(n0) + _CAP_SA[:, None] * np.array((n0[1], -n0[0]))
    )
    return np.concatenate([np.array(side1), cap1, np.array(side2[::-1]), cap0])


def _sc(rs: tuple[float, ...], k: float, add: float = 0.0) -> tuple[float, ...]:
    return tuple(round(r * k + add, 5) for r in rs)


def _ellipse(cx: float, cy: float, rx: float, ry: float, unit: np.ndarray = _CIRC) -> np.ndarray:
    return unit * np.array([rx, ry]) + np.array([cx, cy])


def _hull(pts: np.ndarray) -> np.ndarray:
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


class _Noise:
    """Periodic noise tiles (fabric folds, denim streaks), made once; ``seed`` picks the offset.

    Stored as uint8 with a bias so the shade map can take them with saturating cv2.add/subtract.
    """

    size = 256
    _tiles: dict[str, tuple[np.ndarray, int]] | None = None

    @classmethod
    def tiles(cls) -> dict[str, tuple[np.ndarray, int]]:
        if cls._tiles is None:
            rng = np.random.default_rng(20240611)
            n = cls.size
            fy = np.fft.fftfreq(n)[:, None]
            fx = np.fft.rfftfreq(n)[None, :]

            def filt(sx: float, sy: float, amp: float, bias: int) -> tuple[np.ndarray, int]:
                w = rng.standard_normal((n, n))
                g = np.exp(-2.0 * math.pi**2 * ((fx * sx) ** 2 + (fy * sy) ** 2))
                v = np.fft.irfft2(np.fft.rfft2(w) * g, s=(n, n))
                v = v / (v.std() + 1e-9) * amp
                tile = np.clip(np.rint(v) + bias, 0, 2 * bias).astype(np.uint8)
                return np.tile(tile, (2, 2)), bias

            cls._tiles = {"fabric": filt(9.0, 9.0, 2.8, 12), "denim": filt(0.6, 2.2, 7.0, 32)}
        return cls._tiles

    @classmethod
    def crop(cls, name: str, h: int, w: int, seed: int) -> tuple[np.ndarray, int]:
        tile, bias = cls.tiles()[name]
        n = cls.size
        oy = (seed * 7919 + 13) % n
        ox = (seed * 104729 + 71) % n
        if oy + h > tile.shape[0] or ox + w > tile.shape[1]:
            tile = np.tile(tile, ((oy + h) // tile.shape[0] + 1, (ox + w) // tile.shape[1] + 1))
        return np.ascontiguousarray(tile[oy : oy + h, ox : ox + w]), bias


def _luma(c: tuple[int, int, int]) -> float:
    b, g, r = c
    return 0.114 * b + 0.587 * g + 0.299 * r


def _scale(c: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return (min(255, int(c[0] * k)), min(255, int(c[1] * k)), min(255, int(c[2] * k)))


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (
        int(a[0] * (1 - t) + b[0] * t),
        int(a[1] * (1 - t) + b[1] * t),
        int(a[2] * (1 - t) + b[2] * t),
    )


def _lut(app: Appearance, style: FigureStyle | None = None) -> np.ndarray:
    """Per-call colour table: material id -> BGR."""
    lut = np.zeros((256, 1, 3), np.uint8)
    skin = app.skin
    print2 = (236, 236, 236) if _luma(app.top_color2) < 120 else (28, 28, 30)
    dark_shoe = _luma(app.shoe_color) < 150
    cols = {
        M_SKIN: skin,
        M_HAIR: app.hair_color,
        M_EYE: _scale(skin, 0.35),
        M_LIP: _mix(_scale(skin, 0.78), (60, 60, 150), 0.25),
        M_TOP: app.top_color,
        M_TOP2: app.top_color2,
        M_PAT: app.top_color2,
        M_MIX: _mix(app.top_color, app.top_color2, 0.5),
        M_PRINT: app.top_color2,
        M_PRINT2: print2,
        M_BOTTOM: app.bottom_color,
        M_BOTTOM2: _scale(app.bottom_color, 0.62)
        if _luma(app.bottom_color) > 60
        else _mix(app.bottom_color, (150, 150, 150), 0.35),
        M_BOTTOM3: _scale(app.bottom_color, 0.4)
        if _luma(app.bottom_color) > 60
        else _mix(app.bottom_color, (200, 200, 200), 0.5),
        M_HAT: app.hat_color,
        M_SHOE: app.shoe_color,
        M_SOLE: (214, 214, 210)
        if dark_shoe and _luma(app.shoe_color) > 60
        else (40, 40, 42)
        if not dark_shoe
        else (60, 60, 62),
        M_BAG: app.bag_color,
        M_STRAP: _scale(app.bag_color, 0.8)
        if _luma(app.bag_color) > 50
        else _mix(app.bag_color, (90, 90, 90), 0.3),
    }
    if style is not None:
        ta, tb, tc = style.top_colors
        cols.update({M_TEX_A: ta, M_TEX_B: tb, M_TEX_C: tc})
        cols.update({M_BTEX_A: style.bottom_colors[0], M_BTEX_B: style.bottom_colors[1]})
        cols[M_SLEEVE] = style.sleeve_color or app.top_color
        if style.bag_color is not None:
            cols[M_BAG] = style.bag_color
            cols[M_STRAP] = _scale(style.bag_color, 0.8)
    for k, v in cols.items():
        lut[k, 0] = v
    return lut


def render_figure(
    app: Appearance,
    *,
    height_px: float,
    view_deg: float,
    phase: float,
    stride: float = 1.0,
    light_deg: float = 45.0,
    seed: int = 0,
    style: FigureStyle | None = None,
) -> Sprite:
    """Render one person, ``height_px`` tall standing (head top to sole), as an alpha sprite.

    ``view_deg``: facing direction relative to the camera (0 = facing it, 90 = profile facing
    image left, 180 = back to it, 270 = facing image right; anything between interpolates).
    ``phase`` in [0, 1): walk-cycle phase; ``stride`` in [0, 1] scales the swing (0 = standing).
    ``light_deg``: where the light comes from, same convention as ``view_deg`` seen from the
    camera (0 = from the camera, 90 = from image left). ``seed`` only shifts fabric/denim noise.
    ``style``: extra clothing detail (:class:`FigureStyle`); None renders the default look.
    Designed for 12..400 px; the result is a pure function of the arguments.
    """
    for name, v in (
        ("height_px", height_px),
        ("view_deg", view_deg),
        ("phase", phase),
        ("stride", stride),
        ("light_deg", light_deg),
    ):
        if not math.isfinite(float(v)):
            raise ValueError(f"render_figure: {name} must be finite, got {v!r}")
    if not 1.0 <= float(height_px) <= 2000.0:
        raise ValueError(
            f"render_figure: height_px must be in [1, 2000] (made for 12..400), got {height_px!r}"
        )
    if not 0.0 <= float(stride) <= 1.0:
        raise ValueError(f"render_figure: stride must be in [0, 1], got {stride!r}")
    hpx = float(height_px)
    lx = -math.sin(math.radians(light_deg))  # image-x direction the light comes from
    phase, stride = phase % 1.0, float(stride)
    relax = 1.0 - stride
    if stride < STANCE_STRIDE:
        # nobody stands to attention: a relaxed stance has one foot a little ahead of the other
        # (the weight on the back leg); ``phase`` only picks which foot
        phase, stride = (0.25 if phase < 0.5 else 0.75), STANCE_STRIDE
    sleeve_mat = M_SLEEVE if style is not None and style.sleeve_color is not None else M_TOP
    parts, ground, foot_x, neck_xy = _build(
        app, view_deg, phase, stride, hpx, lx, relax, sleeve_mat
    )
    return _rasterize(parts, app, hpx, ground, foot_x, neck_xy, light_deg, int(seed), style)


def _build(
    app: Appearance,
    view_deg: float,
    phase: float,
    stride: float,
    hpx: float,
    lx: float,
    relax: float = 0.0,
    sleeve_mat: int = M_TOP,
) -> tuple[_Parts, float, float, tuple[float, float]]:
    """All parts as polygons in height units (x right, y down, y = -up); see the module doc."""
    th = math.radians(view_deg % 360.0)
    c, s = math.cos(th), math.sin(th)
    detail = hpx >= 40.0  # folds, eyes, pockets: invisible below that, so skip the work
    fine = hpx >= 90.0
    parts = _Parts()
    bw, shp = app.build, app.body_shape
    sw = bw * (1.04 - 0.12 * shp)  # shoulders
    hw = bw * (0.93 + 0.14 * shp)  # hips
    ww = bw * (1.0 - 0.10 * shp)  # waist
    dep = 0.65 + 0.35 * bw  # torso depth

    def proj(r: float, f: float, u: float) -> tuple[float, float, float]:
        return (-r * c - f * s, -u, -r * s + f * c)

    rot = np.array([[-c, 0.0, -s], [-s, 0.0, c], [0.0, -1.0, 0.0]])

    def proj_arr(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xyd = p @ rot
        return xyd[:, :2], xyd[:, 2]

    def far(d: float) -> float:
        """Parts on the far side of the body are in its shadow."""
        return 1.0 - 0.22 * min(1.0, max(0.0, -d / 0.1))

    a = 2.0 * math.pi * phase
    lean = math.tan(math.radians(4.0) * stride)

    def lean_f(u: float) -> float:
        return lean * max(0.0, u - _HIP_U)

    # ---- legs -------------------------------------------------------------------------------
    amp_hip = math.radians(17.5) * stride
    legs = []
    sole_lo = 1.0
    sole_prof = np.array(
        [
            (-0.036, -0.038),
            (0.098, -0.038),
            (0.113, -0.030),
            (0.108, -0.018),
            (0.050, -0.006),
            (0.012, 0.012),
            (-0.028, 0.010),
            (-0.041, -0.018),
        ]
    )
    sole_half = np.array([0.019, 0.023, 0.018, 0.018, 0.022, 0.020, 0.018, 0.019])
    for sg in (1.0, -1.0):
        al = a if sg > 0 else a + math.pi
        th_h = amp_hip * math.sin(al)
        knee_flex = (
            math.radians(4.0)
            + stride * math.radians(55.0) * max(0.0, math.cos(al + math.pi / 4)) ** 2
        )
        # toe up at heel strike, heel up (toe down) around toe-off
        pitch = stride * (
            math.radians(14.0) * max(0.0, math.cos(al - math.pi / 2)) ** 6
            - math.radians(30.0) * max(0.0, math.cos(al - 1.5 * math.pi)) ** 2
        )
        hx = sg * 0.050 * hw
        splay = sg * relax * _STANCE_SPLAY  # standing feet sit about hip-width apart
        hip = (hx, 0.0, _HIP_U)
        knee = (
            hx * 0.93 + _THIGH * splay,
            _THIGH * math.sin(th_h),
            _HIP_U - _THIGH * math.cos(th_h),
        )
        sa = th_h - knee_flex
        ankle = (
            knee[0] - hx * 0.05 + _SHIN * splay,
            knee[1] + _SHIN * math.sin(sa),
            knee[2] - _SHIN * math.cos(sa),
        )
        cp, sp = math.cos(pitch), math.sin(pitch)
        fl = sole_prof[:, 0] * cp - sole_prof[:, 1] * sp + ankle[1]
        ul = sole_prof[:, 0] * sp + sole_prof[:, 1] * cp + ankle[2]
        sole_lo = min(sole_lo, float(ul.min()))
        legs.append((sg, hip, knee, ankle, fl, ul))
    ground = sole_lo  # the lowest sole point touches the ground: this is the walking bob

    bk = app.bottom_kind
    if bk == "trousers":
        thigh_r, shin_r = (0.060, 0.050, 0.043), (0.043, 0.040, 0.036)
    elif bk == "jeans":
        thigh_r, shin_r = (0.057, 0.046, 0.039), (0.039, 0.035, 0.031)
    else:
        thigh_r, shin_r = (0.054, 0.042, 0.032), (0.031, 0.036, 0.020)
    leg_mat = M_BOTTOM if bk in ("trousers", "jeans") else M_SKIN
    foot_xs = []
    for _sg, hip, knee, ankle, fl, ul in legs:
        hipp, kneep, anklep = proj(*hip), proj(*knee), proj(*ankle)
        raw = hipp[2]
        depth = raw - 0.08  # legs go under the hips and the top hem
        sh = far(raw)
        n = len(fl)
        shoe3 = np.empty((2 * n, 3))
        shoe3[:n, 0] = ankle[0] + sole_half
        shoe3[n:, 0] = ankle[0] - sole_half
        shoe3[:n, 1] = shoe3[n:, 1] = fl
        shoe3[:n, 2] = shoe3[n:, 2] = ul
        shoe2, _ = proj_arr(shoe3)
        parts.add(depth, _FILL, _hull(shoe2), M_SHOE, sh)
        foot_xs.append(float(shoe2[:, 0].mean()))
        lift = np.array([0.0, 0.0, 0.007])
        if detail:
            sole3 = shoe3[[0, 1, n, n + 1]]
            sole2, _ = proj_arr(np.concatenate([sole3, sole3 + lift]))
            parts.add(depth, _FLAT, _hull(sole2), M_SOLE, sh)
        shin_mid = (
            kneep[0] + (anklep[0] - kneep[0]) * 0.3,
            kneep[1] + (anklep[1] - kneep[1]) * 0.3,
        )
        thigh_mid = (hipp[0] + (kneep[0] - hipp[0]) * 0.55, hipp[1] + (kneep[1] - hipp[1]) * 0.55)
        leg_r = (*thigh_r[:2], 0.5 * (thigh_r[2] + shin_r[0]), *shin_r[1:])
        parts.add(
            depth, _FILL, _chain([hipp, thigh_mid, kneep, shin_mid, anklep], leg_r), leg_mat, sh
        )
        if abs(c) > 0.3:
            # the end of the shoe nearer the camera (toe from the front, heel from behind)
            # shows in front of the trouser cuff
            near = [1, 2, 3, 4] if c > 0 else [0, 6, 7]
            end3 = np.concatenate([shoe3[:n][near], shoe3[n:][near]])
            end2, _ = proj_arr(end3)
            parts.add(depth, _FILL, _hull(end2), M_SHOE, sh)
            if detail:
                sole3 = shoe3[[1, n + 1]] if c > 0 else shoe3[[0, n]]
                sole2, _ = proj_arr(np.concatenate([sole3, sole3 + lift]))
                parts.add(depth, _FLAT, _hull(sole2), M_SOLE, sh)
        if bk == "shorts":
            mid = (hipp[0] + (kneep[0] - hipp[0]) * 0.62, hipp[1] + (kneep[1] - hipp[1]) * 0.62)
            parts.add(
                depth,
                _FILL,
                _limb(hipp, mid, (0.0, 1.0), (0.063, 0.057)),
                M_BOTTOM,
                sh,
            )
        if detail and bk in ("trousers", "jeans"):
            # knee folds: two short creases across the leg just above the knee
            dx, dy = kneep[0] - hipp[0], kneep[1] - hipp[1]
            ln = math.hypot(dx, dy) + 1e-9
            nx, ny = -dy / ln, dx / ln
            for t, k in ((0.82, 0.7), (0.92, 0.55)):
                px, py = hipp[0] + dx * t, hipp[1] + dy * t
                r = thigh_r[2] * k
                seg = np.array([(px - nx * r, py - ny * r + 0.006), (px + nx * r, py + ny * r)])
                parts.add(depth, _FOLD, seg, 0, 0.78 * sh, 0.006)
    foot_x = sum(foot_xs) / 2.0

    # ---- pelvis / skirt ---------------------------------------------------------------------
    def section_poly(levels: list[tuple[float, float, float, float]]) -> np.ndarray:
        left, right = [], []
        for u, la, lb, fo in levels:
            half = math.sqrt((la * c) ** 2 + (lb * s) ** 2)
            cx = -(fo + lean_f(u)) * s
            left.append((cx - half, -u))
            right.append((cx + half, -u))
        return np.array(left + right[::-1])

    pelvis = [
        (0.625, 0.090 * ww, 0.060 * dep, 0.0),
        (0.565, 0.101 * hw, 0.070 * dep, -0.006),
        (0.505, 0.100 * hw, 0.068 * dep, -0.008),
        (0.462, 0.090 * hw, 0.060 * dep, -0.004),
    ]
    parts.add(-0.002, _FILL, section_poly(pelvis), M_BOTTOM, 1.0)
    if bk == "skirt":
        kf = [lg[2][1] for lg in legs]
        hem_b = max(0.105, 0.5 * abs(kf[0] - kf[1]) + 0.055)
        skirt = [
            (0.628, 0.092 * ww, 0.062 * dep, 0.0),
            (0.560, 0.108 * hw, 0.074 * dep, -0.006),
            (0.330, 0.140 * hw, hem_b, 0.3 * (kf[0] + kf[1])),
        ]
        poly = section_poly(skirt)
        parts.add(-0.001, _FILL, poly, M_BOTTOM, 1.0)
        if detail:
            for t in (0.3, 0.62):
                top = poly[1] * (1 - t) + poly[4] * t
                bot = poly[2] * (1 - t) + poly[3] * t
                parts.add(-0.001, _FOLD, np.array([top, bot]), 0, 0.8, 0.005)

    # ---- torso ------------------------------------------------------------------------------
    tk = app.top_kind
    hem = {"tshirt": 0.497, "longsleeve": 0.497, "hoodie": 0.484, "jacket": 0.472}[tk]
    loose = 0.008 if tk in ("jacket", "hoodie") else 0.0
    torso = [
        (0.848, 0.034, 0.036, -0.002),
        (0.834, 0.080 * sw, 0.050 * dep, -0.006),
        (0.812, 0.118 * sw + loose, 0.058 * dep, -0.004),
        (0.770, 0.112 * sw + loose, 0.066 * dep, 0.004),
        (0.700, 0.101 * (sw + ww) / 2 + loose, 0.066 * dep, 0.006),
        (0.620, 0.091 * ww + loose, 0.061 * dep, 0.001),
        (hem, 0.100 * hw + loose * 1.5, 0.068 * dep, -0.004),
    ]
    tpoly = section_poly(torso)
    parts.add(0.0, _FILL, tpoly, M_TOP, 1.0)

    def front_pt(r: float, u: float, out: float = 0.003) -> tuple[float, float, float]:
        """A point on the torso's front surface (straps, prints, the open jacket's shirt)."""
        i = 1
        while i < len(torso) - 1 and torso[i][0] > u:
            i += 1
        u0, a0, b0, f0 = torso[i - 1]
        u1, a1, b1, f1 = torso[i]
        t = min(1.0, max(0.0, (u0 - u) / (u0 - u1)))
        la, lb, lf = a0 + (a1 - a0) * t, b0 + (b1 - b0) * t, f0 + (f1 - f0) * t
        f = lf + lb * math.sqrt(max(0.0, 1.0 - (r / la) ** 2)) + out
        return proj(r, f + lean_f(u), u)

    front_vis = c > 0.05
    if detail:
        # folds from the armpits toward the waist, visible front and back
        for sg in (1.0, -1.0):
            p0 = front_pt(sg * 0.07 * sw, 0.745)
            p1 = front_pt(sg * 0.025, 0.64)
            parts.add(0.0005, _FOLD, np.array([p0[:2], p1[:2]]), 0, 0.82, 0.005)
        p0 = proj(-0.08 * hw, 0.0, hem + 0.035)
        p1 = proj(0.08 * hw, 0.0, hem + 0.03)
        parts.add(0.0005, _FOLD, np.array([p0[:2], p1[:2]]), 0, 0.84, 0.004)

    if tk == "jacket":
        # open front: the inner shirt shows in a band whose width follows the rotation
        if c > 0.15:
            pts = []
            for u, half in ((0.838, 0.030), (0.76, 0.036), (0.62, 0.040), (hem + 0.01, 0.042)):
                pts.append(front_pt(-half, u)[:2])
            for u, half in ((hem + 0.01, 0.042), (0.62, 0.040), (0.76, 0.036), (0.838, 0.030)):
                pts.append(front_pt(half, u)[:2])
            band = np.array(pts)
            parts.add(0.001, _FLAT, band, M_TOP2, 1.0)
            if app.top_pattern == "print":
                pr = [
                    front_pt(r, u, 0.005)[:2]
                    for r, u in ((-0.028, 0.76), (0.028, 0.76), (0.028, 0.705), (-0.028, 0.705))
                ]
                parts.add(0.0015, _FLAT, np.array(pr), M_PRINT2, 1.0)
            # lapels: darker edges of the open jacket
            for i0 in (0, 4):
                parts.add(0.0016, _FOLD, band[i0 : i0 + 4], 0, 0.7, 0.006)
    elif tk == "hoodie":
        hood = np.array(
            [
                (r, df + lean_f(0.84), u)
                for r in (-0.07, 0.07)
                for df in (-0.025, -0.075)
                for u in (0.80, 0.878)
            ]
            + [(0.0, -0.05 + lean_f(0.84), 0.892), (0.0, -0.085, 0.84)]
        )
        h2, hd = proj_arr(hood)
        parts.add(float(hd.mean()) + 0.01, _FILL, _hull(h2), M_TOP, 0.92)
        if detail and front_vis:
            pk = [
                front_pt(r, u)[:2]
                for r, u in ((-0.05, 0.60), (0.05, 0.60), (0.07, 0.52), (-0.07, 0.52))
            ]
            parts.add(0.001, _FOLD, np.array([*pk, pk[0]]), 0, 0.72, 0.006)
            for sg in (1.0, -1.0):
                d0 = front_pt(sg * 0.022, 0.815)
                d1 = front_pt(sg * 0.024, 0.765)
                parts.add(0.0012, _LINE, np.array([d0[:2], d1[:2]]), M_TOP2, 1.0, 0.004)
    elif front_vis and detail:
        # round neckline of a t-shirt / long-sleeve
        nl = [
            front_pt(r, u, 0.004)[:2]
            for r, u in (
                (-0.032, 0.846),
                (-0.022, 0.825),
                (0.0, 0.816),
                (0.022, 0.825),
                (0.032, 0.846),
            )
        ]
        parts.add(0.001, _SOFT, np.array(nl), M_SKIN, 0.95)

    if app.top_pattern == "print" and tk != "jacket" and front_vis:
        pr = [
            front_pt(r, u, 0.005)[:2]
            for r, u in ((-0.05, 0.775), (0.05, 0.775), (0.05, 0.685), (-0.05, 0.685))
        ]
        parts.add(0.0015, _FLAT, np.array(pr), M_PRINT, 1.0)
        ctr = front_pt(0.0, 0.73, 0.006)
        rx = 0.024 * max(0.05, c)
        parts.add(0.0016, _FLAT, _ellipse(ctr[0], ctr[1], rx, 0.026), M_PRINT2, 1.0)

    # ---- arms -------------------------------------------------------------------------------
    amp_arm = math.radians(22.0) * stride
    sleeve = {"tshirt": 0.0, "longsleeve": 0.004, "jacket": 0.010, "hoodie": 0.008}[tk]
    bag = app.bag
    for sg in (1.0, -1.0):
        al = a if sg > 0 else a + math.pi
        carry = bag == "handbag" and sg > 0
        amp = amp_arm * (0.35 if carry else 1.0)
        alpha = -amp * math.sin(al)
        swing = max(0.0, alpha / amp_arm) if amp_arm > 0 else 0.0
        elbow_flex = math.radians(6.0 + 14.0 * relax) + stride * math.radians(8.0 + 26.0 * swing)
        if carry:
            elbow_flex = math.radians(4.0)
        sx = sg * 0.110 * sw
        shf = lean_f(_SHOULDER_U)
        sho = (sx, shf, _SHOULDER_U)
        out = sg * relax * 0.012  # relaxed arms hang a little away from the body
        sx += out
        elb = (
            sx + sg * 0.010,
            shf + _UPPER_ARM * math.sin(alpha),
            _SHOULDER_U - _UPPER_ARM * math.cos(alpha),
        )
        fa = alpha + elbow_flex
        wri = (sx + sg * 0.020, elb[1] + _FOREARM * math.sin(fa), elb[2] - _FOREARM * math.cos(fa))
        ha = fa + elbow_flex * 0.2
        tip = (sx + sg * 0.022, wri[1] + _HAND * math.sin(ha), wri[2] - _HAND * math.cos(ha))
        shp_, elp, wrp, tpp = proj(*sho), proj(*elb), proj(*wri), proj(*tip)
        raw = (shp_[2] + elp[2] + wrp[2]) / 3.0
        depth = raw + 0.012
        sh = far(shp_[2])
        upper = _limb(shp_, elp, (0.0, 0.35, 1.0), _sc((0.030, 0.031, 0.025), bw, sleeve))
        arm_mid = (shp_[0] + (elp[0] - shp_[0]) * 0.35, shp_[1] + (elp[1] - shp_[1]) * 0.35)
        arm = _chain([shp_, arm_mid, elp, wrp], _sc((0.030, 0.031, 0.025, 0.018), bw, sleeve))
        hand = _limb(wrp, tpp, (0.0, 0.5, 1.0), _sc((0.017, 0.021, 0.014), 0.9 + 0.1 * bw))
        if raw > 0.02:  # near arm: soft shadow on the torso behind it
            parts.add(depth, _SHADOW, upper + np.array([-0.014 * lx, 0.012]), 0, 0.72)
        if tk == "tshirt":
            parts.add(depth, _FILL, arm, M_SKIN, sh)
            mid = (shp_[0] + (elp[0] - shp_[0]) * 0.45, shp_[1] + (elp[1] - shp_[1]) * 0.45)
            sl = _limb(shp_, mid, (0.0, 1.0), _sc((0.035, 0.035), bw))
            parts.add(depth, _FILL, sl, sleeve_mat, sh)
        else:
            parts.add(depth, _FILL, arm, sleeve_mat, sh)
            if detail:  # elbow crease
                parts.add(
                    depth,
                    _FOLD,
                    np.array([(elp[0] - 0.018, elp[1] - 0.01), (elp[0] + 0.016, elp[1] + 0.006)]),
                    0,
                    0.8 * sh,
                    0.005,
                )
        parts.add(depth, _FILL, hand, M_SKIN, sh)
        if carry:
            # handbag hanging from this hand, long side along the walking direction
            hb = np.array(
                [
                    (tip[0] + sg * dr, tip[1] + df, tip[2] - 0.025 - du)
                    for dr in (-0.016, 0.016)
                    for df in (-0.055, 0.055)
                    for du in (0.0, 0.085)
                ]
            )
            hb[:, 2] += np.array([0, -0.004, 0, -0.004] * 2)
            hb2, hbd = proj_arr(hb)
            parts.add(float(hbd.mean()) + 0.014, _FILL, _hull(hb2), M_BAG, sh)
            handle = np.array(
                [
                    proj(tip[0], tip[1] - 0.04, tip[2] - 0.03)[:2],
                    tpp[:2],
                    proj(tip[0], tip[1] + 0.04, tip[2] - 0.03)[:2],
                ]
            )
            parts.add(float(hbd.mean()) + 0.0145, _LINE, handle, M_STRAP, sh, 0.008)

    # ---- bags on the body -------------------------------------------------------------------
    if bag == "backpack":
        bb = 0.062 * dep + lean_f(0.70)
        bp = np.array(
            [
                (r, -bb - df, u)
                for r in (-0.085 * sw, 0.085 * sw)
                for df in (0.0, 0.085)
                for u in (0.575, 0.800)
            ]
        )
        bp[:, 1] += (bp[:, 2] - 0.575) * lean
        bp2, bpd = proj_arr(bp)
        bdepth = float(bpd.mean())
        parts.add(bdepth, _FILL, _hull(bp2), M_BAG, 1.0)
        if detail and c < -0.2:  # front pocket on the back side of the pack
            pk = np.array(
                [(r, -bb - 0.088, u) for r in (-0.06 * sw, 0.06 * sw) for u in (0.59, 0.68)]
            )
            pk[:, 1] += (pk[:, 2] - 0.575) * lean
            pk2, _ = proj_arr(pk)
            parts.add(bdepth + 0.0005, _FLAT, _hull(pk2), M_STRAP, 0.95)
        if c > -0.35:
            for sg in (1.0, -1.0):
                st = [
                    proj(sg * 0.055 * sw, -0.03 + lean_f(0.84), 0.842)[:2],
                    front_pt(sg * 0.062 * sw, 0.79, 0.006)[:2],
                    front_pt(sg * 0.080 * sw, 0.70, 0.006)[:2],
                ]
                d = proj(sg * 0.06, 0.06, 0.76)[2]
                parts.add(d + 0.002, _LINE, np.array(st), M_STRAP, far(d) * 0.95, 0.014)
    elif bag == "shoulder_bag":
        sg = 1.0
        bx = sg * (0.108 * hw + 0.024)
        sb = np.array(
            [
                (bx + dr, df, u)
                for dr in (-0.018, 0.018)
                for df in (-0.07, 0.07)
                for u in (0.445, 0.56)
            ]
        )
        sb2, sbd = proj_arr(sb)
        sdep = float(sbd.mean()) + 0.005
        parts.add(sdep, _FILL, _hull(sb2), M_BAG, far(float(sbd.mean())))
        if detail:
            flap = np.array(
                [
                    (bx + dr, df, u)
                    for dr in (-0.019, 0.019)
                    for df in (-0.071, 0.071)
                    for u in (0.515, 0.56)
                ]
            )
            fl2, _ = proj_arr(flap)
            parts.add(sdep + 0.0002, _FLAT, _hull(fl2), M_STRAP, far(float(sbd.mean())))
        fr = [
            proj(bx - sg * 0.01, 0.0, 0.56)[:2],
            front_pt(sg * 0.02, 0.70, 0.006)[:2],
            proj(-sg * 0.07 * sw, 0.01 + lean_f(0.83), 0.838)[:2],
        ]
        bk_ = [
            proj(-sg * 0.07 * sw, -0.01 + lean_f(0.83), 0.838)[:2],
            proj(sg * 0.02, -0.066 * dep - 0.006 + lean_f(0.70), 0.70)[:2],
            proj(bx - sg * 0.01, 0.0, 0.56)[:2],
        ]
        parts.add(
            0.003 * (1 if c >= 0 else -1) + 0.02 * c, _LINE, np.array(fr), M_STRAP, 0.95, 0.010
        )
        parts.add(-0.02 * c - 0.001, _LINE, np.array(bk_), M_STRAP, 0.95, 0.010)

    # ---- neck and head ----------------------------------------------------------------------
    hh = _HEAD_HH
    uh = 1.0 - hh
    fh = _HEAD_F + lean_f(uh)
    neck0 = proj(0.0, -0.004 + lean_f(0.80), 0.80)
    neck1 = proj(0.0, 0.004 + lean_f(0.90), uh - 0.45 * hh)
    hx, hy, hd = proj(0.0, fh, uh)
    hdepth = hd + 0.03
    parts.add(
        hdepth - 0.0005,
        _FILL,
        _limb(neck0, neck1, (0.0, 1.0), _sc((0.031, 0.028), 0.9 + 0.1 * bw)),
        M_SKIN,
        0.9,
    )
    ha_, hb_ = _HEAD_A * (0.95 + 0.05 * bw), _HEAD_B
    head_hw = math.sqrt((ha_ * c) ** 2 + (hb_ * s) ** 2)
    style = app.hair_style
    hat = app.hat
    if style == "long":
        lh = np.array(
            [
                (r, fh + df, u)
                for r in (-0.046, 0.046)
                for df in (-0.02, -0.05)
                for u in (uh + 0.4 * hh, uh - 0.8 * hh)
            ]
            + [
                (r, df + lean_f(0.74), u)
                for r, u in (
                    (-0.056, 0.75),
                    (-0.045, 0.733),
                    (-0.02, 0.726),
                    (0.02, 0.726),
                    (0.045, 0.733),
                    (0.056, 0.75),
                )
                for df in (-0.058, -0.02)
            ]
        )
        lh2, lhd = proj_arr(lh)
        parts.add(float(lhd.mean()) + 0.03, _FILL, _hull(lh2), M_HAIR, 0.92)
        if detail:
            for t in (-0.02, 0.015):
                p0 = proj(t, -0.055, uh - 0.6 * hh)
                p1 = proj(t * 1.3, -0.06 + lean_f(0.74), 0.75)
                parts.add(
                    float(lhd.mean()) + 0.0301, _FOLD, np.array([p0[:2], p1[:2]]), 0, 0.8, 0.004
                )
    elif style == "ponytail":
        sway = 0.012 * stride * math.sin(2 * a)
        p0 = proj(0.0, fh - hb_ * 0.95, uh + 0.1 * hh)
        p1 = proj(sway, fh - hb_ * 1.3, uh - 1.7 * hh)
        parts.add(
            hdepth + (p0[2] - hd) * 1.5,
            _FILL,
            _limb(p0, p1, (0.0, 0.3, 1.0), (0.017, 0.024, 0.010)),
            M_HAIR,
            0.95,
        )
    bald = style == "bald"
    head_mat = M_SKIN if bald else M_HAIR
    if style == "curly":
        curl = _ellipse(hx, hy - 0.09 * hh, head_hw * 1.22, hh * 1.11, _CURLY)
        parts.add(hdepth, _FILL, curl, M_HAIR, 1.0)
    head = _ellipse(hx, hy, head_hw, hh, _EGG)
    if not bald:
        hair = _ellipse(hx, hy - 0.04 * hh, head_hw * 1.045, hh * 1.03, _EGG)
        parts.add(hdepth, _FILL, hair, M_HAIR, 1.0)
    parts.add(hdepth, _FILL, head, head_mat, 1.0)
    if not bald:
        # face: the head outline with its top squashed to the hairline; slides to the front
        # edge and narrows as the head turns away, gone from behind
        vis = (c + 0.45) / 1.45
        if vis > 0:
            fw = head_hw * (0.55 + 0.42 * max(0.0, c)) * min(1.0, vis / 0.3) ** 0.7
            fcx = hx - s * (head_hw - fw)
            face = _EGG.copy() * np.array([fw, hh])
            top = 0.40 if style != "curly" else 0.25
            face[:, 1] = np.where(face[:, 1] < 0, face[:, 1] * top, face[:, 1])
            face += np.array([fcx, hy])
            parts.add(hdepth, _FILL, face, M_SKIN, 1.0)
        if c < 0.3 and style in ("short", "ponytail"):
            nape = _EGG * np.array([head_hw * 0.7, hh]) + np.array([hx, hy])
            nape[:, 1] = np.maximum(nape[:, 1], hy + 0.62 * hh)
            parts.add(hdepth, _SOFT, nape, M_SKIN, 0.9)
    if style in ("short", "bald") and hat != "beanie":
        for sg in (1.0, -1.0):
            ex, ey, ed = proj(sg * ha_ * 0.97, fh - 0.008, uh - 0.06 * hh)
            if (ed - hd) > 0.4 * ha_:
                ear = _ellipse(ex, ey, 0.006 + 0.004 * abs(c), 0.015)
                parts.add(hdepth, _SOFT, ear, M_SKIN, 0.88)
    if abs(s) > 0.25 and c > -0.55:
        # nose: a small bump on the facing side
        n0 = proj(0.0, fh + hb_ * 0.92, uh + 0.05 * hh)
        n1 = proj(0.0, fh + hb_ + 0.014, uh - 0.28 * hh)
        n2 = proj(0.0, fh + hb_ * 0.9, uh - 0.36 * hh)
        parts.add(hdepth, _SOFT, np.array([n0[:2], n1[:2], n2[:2]]), M_SKIN, 1.0)
    if detail and c > 0.15:
        # eye region: brow shadow band, eyes, mouth
        for sg in (1.0, -1.0):
            ex, ey, ed = proj(sg * 0.36 * ha_, fh + hb_ * 0.85, uh + 0.02 * hh)
            if (ed - hd) > 0.2 * hb_:
                k = max(0.0, min(1.0, (ed - hd) / hb_))
                band = _ellipse(ex, ey - 0.004, 0.014 * k + 0.004, 0.010)
                parts.add(hdepth, _SHADOW, band, 0, 0.8)
                if fine:
                    parts.add(
                        hdepth, _FLAT, _ellipse(ex, ey, 0.0065 * k + 0.002, 0.0045), M_EYE, 1.0
                    )
                    if not bald:
                        parts.add(
                            hdepth,
                            _LINE,
                            np.array([(ex - 0.008 * k, ey - 0.013), (ex + 0.008 * k, ey - 0.014)]),
                            M_HAIR,
                            1.0,
                            0.004,
                        )
        mx, my, _ = proj(0.0, fh + hb_ * 0.9, uh - 0.55 * hh)
        if fine:
            parts.add(
                hdepth,
                _LINE,
                np.array([(mx - 0.011 * c, my), (mx + 0.011 * c, my)]),
                M_LIP,
                1.0,
                0.005,
            )
    if hat == "cap":
        dome = _ellipse(hx, hy - 0.04 * hh, head_hw * 1.06, hh * 1.06, _EGG)
        dome[:, 1] = np.minimum(dome[:, 1], hy - 0.25 * hh)
        parts.add(hdepth, _FILL, dome, M_HAT, 1.0)
        brim3 = np.array(
            [
                (r, fh + df, uh + 0.22 * hh - du)
                for r, df, du in (
                    (-0.046, hb_ * 0.6, 0.0),
                    (0.046, hb_ * 0.6, 0.0),
                    (0.038, hb_ + 0.058, 0.01),
                    (-0.038, hb_ + 0.058, 0.01),
                )
            ]
        )
        brim3 = np.concatenate([brim3, brim3 + np.array([0.0, 0.0, 0.012])])
        br2, brd = proj_arr(brim3)
        parts.add(hdepth + (float(brd.mean()) - hd), _FILL, _hull(br2), M_HAT, 0.85)
    elif hat == "beanie":
        dome = _ellipse(hx, hy - 0.18 * hh, head_hw * 1.09, hh * 1.0, _EGG)
        dome[:, 1] = np.minimum(dome[:, 1], hy - 0.0 * hh)
        parts.add(hdepth, _FILL, dome, M_HAT, 1.0)
        cuff = _ellipse(hx, hy, head_hw * 1.1, hh, _CIRC)
        cuff[:, 1] = np.clip(cuff[:, 1], hy - 0.28 * hh, hy + 0.0 * hh)
        parts.add(hdepth, _FLAT, cuff, M_HAT, 0.86)
    neck_xy = (hx, -0.80)
    return parts, ground, foot_x, neck_xy


def _rasterize(
    parts: _Parts,
    app: Appearance,
    hpx: float,
    ground: float,
    foot_x: float,
    neck_xy: tuple[float, float],
    light_deg: float,
    seed: int,
    style: FigureStyle | None = None,
) -> Sprite:
    """Draw the sorted parts into supersampled label/shade maps, texture, shade, downsample."""
    ss = 3 if hpx < 64 else 2
    k = hpx * ss
    items = sorted(parts.items, key=lambda t: (t[0], t[1]))
    lens = [len(t[3]) for t in items]
    starts = np.cumsum([0, *lens])
    allp = np.concatenate([t[3] for t in items])
    allp[:, 1] += ground
    solid = np.repeat(np.array([t[2] in (_FILL, _FLAT, _LINE, _SOFT) for t in items]), lens)
    sp = allp[solid]
    lo = sp.min(axis=0) * hpx
    hi = sp.max(axis=0) * hpx
    ox = math.floor(lo[0]) - 1
    oy = math.floor(lo[1]) - 1
    w_out = math.ceil(hi[0]) + 1 - ox
    h_out = math.ceil(hi[1]) + 1 - oy
    W, H = w_out * ss, h_out * ss

    # every vertex to fixed-point canvas coordinates at once; the same for the shading layers
    q = allp * (k * _FP) - np.array([ox * ss * _FP, oy * ss * _FP])
    qi = np.rint(q).astype(np.int32)
    lr = math.radians(light_deg)
    lx = -math.sin(lr)  # image-x direction the light comes from
    expo = 0.84 + 0.16 * max(0.0, math.cos(lr))
    if hpx >= 150:
        layers = ((0.82, 0.12, 0.93), (0.62, 0.24, 1.0), (0.40, 0.34, 1.07), (0.2, 0.42, 1.14))
    elif hpx >= 30:
        layers = ((0.72, 0.2, 1.0), (0.36, 0.36, 1.11))
    else:
        layers = ((0.55, 0.26, 1.06),)
    st = starts[:-1]
    cnt = np.asarray(lens, dtype=np.float64)
    cx = np.repeat(np.add.reduceat(q[:, 0], st) / cnt, lens)
    hw = np.repeat(
        (np.maximum.reduceat(q[:, 0], st) - np.minimum.reduceat(q[:, 0], st)) * 0.5, lens
    )
    lay_q = []
    for sc, of, _ in layers:
        lq = qi.copy()
        lq[:, 0] = np.rint(cx + (q[:, 0] - cx) * sc + (lx * of) * hw)
        lay_q.append(lq)
    outline_t = max(1, round(ss * hpx / 220.0))

    lab = np.zeros((H, W), np.uint8)
    shade = np.full((H, W), 128, np.uint8)
    fill, poly = cv2.fillPoly, cv2.polylines
    l8 = cv2.LINE_8
    for i, (_d, _s, kind, _p, mat, sh, width) in enumerate(items):
        a, b = starts[i], starts[i + 1]
        qq = [qi[a:b]]
        v = sh * expo * 128.0
        if kind == _FILL:
            fill(lab, qq, mat, l8, _SHIFT)
            fill(shade, qq, min(255, int(v * _SHADE_BASE)), l8, _SHIFT)
            for (_, _, mult), lq in zip(layers, lay_q, strict=True):
                fill(shade, [lq[a:b]], min(255, int(v * mult)), l8, _SHIFT)
            poly(shade, qq, True, int(v * _SHADE_RIM), outline_t, l8, _SHIFT)
        elif kind == _FLAT:
            fill(lab, qq, mat, l8, _SHIFT)
            fill(shade, qq, min(255, int(v)), l8, _SHIFT)
            poly(shade, qq, True, int(v * _SHADE_RIM), outline_t, l8, _SHIFT)
        elif kind == _SHADOW:
            fill(shade, qq, min(255, int(v)), l8, _SHIFT)
        elif kind == _SOFT:
            fill(lab, qq, mat, l8, _SHIFT)
            fill(shade, qq, min(255, int(v)), l8, _SHIFT)
        elif kind == _FOLD:
            poly(shade, qq, False, min(255, int(v)), max(1, round(width * k)), l8, _SHIFT)
        else:  # _LINE: a strap or string, in its own material
            t = max(1, round(width * k))
            poly(lab, qq, False, mat, t, l8, _SHIFT)
            poly(shade, qq, False, min(255, int(v)), t, l8, _SHIFT)

    neck = (neck_xy[0] * k - ox * ss, (neck_xy[1] + ground) * k - oy * ss)
    _texture(lab, app, hpx, ss, neck)
    if style is not None:
        _style_texture(lab, app, style, hpx, ss, neck)

    # soft shading (two box passes ~ a Gaussian, much cheaper on uint8), then fabric/denim noise
    sig = 0.45 * ss + 0.004 * hpx * ss
    box = max(3, 2 * round((math.sqrt(6.0 * sig * sig + 1.0) - 1.0) / 2.0) + 1)
    shade = cv2.blur(cv2.blur(shade, (box, box)), (box, box))
    cloth = cv2.inRange(lab, _CLOTH_LO, _CLOTH_HI)
    if style is not None:
        cloth = cv2.bitwise_or(cloth, cv2.inRange(lab, _STYLE_LO, _STYLE_HI))
    nz, bias = _Noise.crop("fabric", H, W, seed)
    cv2.add(shade, nz, dst=shade, mask=cloth)
    cv2.subtract(shade, np.full_like(shade, bias), dst=shade, mask=cloth)
    if style is not None:
        _style_shade(shade, cloth, style, hpx, ss, seed)
    if app.bottom_pattern == "denim" and hpx >= 24:
        den = cv2.compare(lab, M_BOTTOM, cv2.CMP_EQ)
        nz, bias = _Noise.crop("denim", H, W, seed)
        cv2.add(shade, nz, dst=shade, mask=den)
        cv2.subtract(shade, np.full_like(shade, bias), dst=shade, mask=den)

    # colour, premultiplied downsample (background is black), un-premultiply
    col = cv2.LUT(cv2.merge([lab, lab, lab]), _lut(app, style))
    col = cv2.multiply(col, cv2.merge([shade, shade, shade]), scale=1.0 / 128.0)
    alpha = cv2.compare(lab, 0, cv2.CMP_GT)
    col_s = cv2.resize(col, (w_out, h_out), interpolation=cv2.INTER_AREA)
    a_s = cv2.resize(alpha, (w_out, h_out), interpolation=cv2.INTER_AREA)
    rgb = cv2.divide(col_s, cv2.merge([a_s, a_s, a_s]), scale=255.0)
    foot = (float(foot_x * hpx - ox), float(-oy))  # the ground is y = 0 before the offset
    return Sprite(rgb=rgb, alpha=a_s.astype(np.float32) * np.float32(1.0 / 255.0), foot=foot)


def _texture(
    lab: np.ndarray, app: Appearance, hpx: float, ss: int, neck: tuple[float, float]
) -> None:
    """Clothing patterns as relabelling of top/bottom pixels, anchored at the neck."""
    H, W = lab.shape
    stripe = max(2.0, hpx / 25.0) * ss
    nx, ny = neck
    pat = app.top_pattern
    if pat in ("hstripes", "vstripes", "checks", "dots"):
        top = lab == M_TOP
        if top.any():
            yy = np.arange(H, dtype=np.float32)[:, None] - np.float32(ny)
            xx = np.arange(W, dtype=np.float32)[None, :] - np.float32(nx)
            if pat == "hstripes":
                on = (np.floor(yy / stripe).astype(np.int32) & 1).astype(bool)
                lab[top & on] = M_PAT
            elif pat == "vstripes":
                on = (np.floor(xx / stripe + 0.5).astype(np.int32) & 1).astype(bool)
                lab[top & on] = M_PAT
            elif pat == "checks":
                cy = (np.floor(yy / stripe).astype(np.int32) & 1).astype(bool)
                cx = (np.floor(xx / stripe + 0.5).astype(np.int32) & 1).astype(bool)
                lab[top & (cy ^ cx)] = M_MIX
                lab[top & (cy & cx)] = M_PAT
            else:
                per = stripe * 2.0
                ry = np.mod(yy, per) - per / 2
                row = np.floor(yy / per).astype(np.int32) & 1
                rx = np.mod(xx + row * (per / 2), per) - per / 2
                on = (rx * rx + ry * ry) < (0.28 * per) ** 2
                lab[top & on] = M_PAT
    if app.bottom_pattern == "checks":
        bot = lab == M_BOTTOM
        if bot.any():
            sz = stripe * 1.3
            yy = np.arange(H, dtype=np.float32)[:, None]
            xx = np.arange(W, dtype=np.float32)[None, :] - np.float32(nx)
            cy = np.floor(yy / sz).astype(np.int32) % 3 == 0
            cx = np.floor(xx / sz + 0.5).astype(np.int32) % 3 == 0
            lab[bot & (cy ^ cx)] = M_BOTTOM2
            lab[bot & (cy & cx)] = M_BOTTOM3


class _StyleNoise:
    """Low-resolution periodic noise fields for styled clothing (camouflage, speckle, folds).

    Kept apart from :class:`_Noise` so the default renderer's tiles never change. Each field is
    a small tile, resized to the canvas so its features scale with the person, not the pixels.
    """

    size = 64
    _tiles: dict[str, np.ndarray] | None = None

    @classmethod
    def tiles(cls) -> dict[str, np.ndarray]:
        if cls._tiles is None:
            rng = np.random.default_rng(20261207)
            n = cls.size
            fy = np.fft.fftfreq(n)[:, None]
            fx = np.fft.rfftfreq(n)[None, :]

            def filt(sx: float, sy: float) -> np.ndarray:
                w = rng.standard_normal((n, n))
                g = np.exp(-2.0 * math.pi**2 * ((fx * sx) ** 2 + (fy * sy) ** 2))
                v = np.fft.irfft2(np.fft.rfft2(w) * g, s=(n, n))
                return np.tile((v / (v.std() + 1e-9)).astype(np.float32), (2, 2))

            cls._tiles = {"blotch": filt(3.0, 3.0), "speck": filt(0.7, 0.7), "fold": filt(4.0, 0.9)}
        return cls._tiles

    @classmethod
    def field(cls, name: str, H: int, W: int, cells_per_px: float, seed: int) -> np.ndarray:
        """A (H, W) float32 field, unit std, with ``cells_per_px`` tile cells per canvas pixel."""
        tile = cls.tiles()[name]
        n = cls.size
        h = min(n, max(2, math.ceil(H * cells_per_px) + 1))
        w = min(n, max(2, math.ceil(W * cells_per_px) + 1))
        oy, ox = (seed * 7919 + 5) % n, (seed * 104729 + 11) % n
        return cv2.resize(tile[oy : oy + h, ox : ox + w], (W, H), interpolation=cv2.INTER_LINEAR)


def _plaid(
    lab: np.ndarray, mask: np.ndarray, yy: np.ndarray, xx: np.ndarray, per: float, mats: tuple
) -> None:
    """Tartan: broad bands both ways (``mats[0]``, overlaps ``mats[2]``) and thin lines."""
    hb = np.mod(yy, per) < 0.36 * per
    vb = np.mod(xx, per) < 0.36 * per
    lab[mask & (hb ^ vb)] = mats[0]
    lab[mask & hb & vb] = mats[2]
    thin = max(1.0, 0.07 * per)
    ln = (np.abs(np.mod(yy, per) - 0.68 * per) < thin) | (
        np.abs(np.mod(xx, per) - 0.68 * per) < thin
    )
    lab[mask & ln] = mats[1]


def _style_texture(
    lab: np.ndarray,
    app: Appearance,
    style: FigureStyle,
    hpx: float,
    ss: int,
    neck: tuple[float, float],
) -> None:
    """A style's textures as relabelling of solid top/bottom pixels, anchored at the neck."""
    H, W = lab.shape
    k = hpx * ss  # canvas pixels per body height
    stripe = max(2.0, hpx / 25.0) * ss * style.top_scale
    nx, ny = neck
    yy = np.arange(H, dtype=np.float32)[:, None] - np.float32(ny)
    xx = np.arange(W, dtype=np.float32)[None, :] - np.float32(nx)
    tex = style.top_texture if app.top_pattern == "solid" else "none"
    top = lab == M_TOP if tex != "none" else None
    if top is not None and top.any():
        if tex == "tartan":
            _plaid(lab, top, yy, xx, stripe * 3.2, (M_TEX_A, M_TEX_B, M_TEX_C))
        elif tex == "pinstripe":
            lab[top & (np.mod(xx, stripe * 1.3) < max(1.0, 0.35 * ss))] = M_TEX_A
        elif tex == "gingham":
            per = stripe * 0.9
            cy, cx = np.mod(yy, per) < per / 2, np.mod(xx, per) < per / 2
            lab[top & (cy ^ cx)] = M_TEX_A
            lab[top & cy & cx] = M_TEX_B
        elif tex == "breton":
            lab[top & (np.mod(yy, stripe * 1.1) < stripe * 0.45)] = M_TEX_A
        elif tex in ("camo", "speckle"):
            name, cells = ("blotch", 9.0) if tex == "camo" else ("speck", 28.0)
            f = _StyleNoise.field(name, H, W, cells / k, style.seed)
            lo, hi = (-0.35, 0.55) if tex == "camo" else (0.9, 1.5)
            lab[top & (f > lo) & (f <= hi)] = M_TEX_A
            lab[top & (f > hi)] = M_TEX_B
            if tex == "camo":
                lab[top & (f < -1.0)] = M_TEX_C
        elif tex == "yoke":
            lab[top & (yy < 0.085 * k)] = M_TEX_A
        elif tex == "chest_band":
            band = (yy > 0.075 * k) & (yy < 0.135 * k)
            lab[top & band] = M_TEX_A
            lab[top & (yy >= 0.135 * k) & (yy < 0.15 * k)] = M_TEX_B
        elif tex == "logo":
            cy = 0.12 * k
            r = 0.045 * k * style.top_scale
            box = (np.abs(xx) < r) & (np.abs(yy - cy) < 0.7 * r)
            lab[top & box] = M_TEX_A
            inner = (xx**2 + (yy - cy) ** 2) < (0.45 * r) ** 2
            lab[top & inner] = M_TEX_B
    btex = style.bottom_texture if app.bottom_pattern == "solid" else "none"
    bot = lab == M_BOTTOM if btex != "none" else None
    if bot is not None and bot.any():
        bstripe = stripe * 1.2
        if btex == "plaid":
            _plaid(lab, bot, yy, xx, bstripe * 2.6, (M_BTEX_A, M_BTEX_B, M_BTEX_A))
        elif btex == "pinstripe":
            lab[bot & (np.mod(xx, bstripe * 1.2) < max(1.0, 0.35 * ss))] = M_BTEX_A
        elif btex == "camo":
            f = _StyleNoise.field("blotch", H, W, 9.0 / k, style.seed + 1)
            lab[bot & (f > 0.3)] = M_BTEX_A
            lab[bot & (f < -0.8)] = M_BTEX_B
        else:  # cuffs: the lowest band of the trousers (rolled up, or two-tone sportswear)
            rows = np.nonzero(bot.any(axis=1))[0]
            lab[bot & (np.arange(H)[:, None] > rows[-1] - 0.05 * k)] = M_BTEX_A


def _style_shade(
    shade: np.ndarray, cloth: np.ndarray, style: FigureStyle, hpx: float, ss: int, seed: int
) -> None:
    """Stronger fabric grain and low-frequency folds on clothing (in place, uint8 around 128)."""
    H, W = shade.shape
    extra = np.zeros((H, W), np.float32)
    if style.fabric_gain > 1.0:
        nz, bias = _Noise.crop("fabric", H, W, seed + 17)
        extra += (nz.astype(np.float32) - bias) * np.float32(style.fabric_gain - 1.0)
    if style.folds > 0:
        f = _StyleNoise.field("fold", H, W, 14.0 / (hpx * ss), style.seed + 2)
        extra += f * np.float32(20.0 * style.folds)
    if not extra.any():
        return
    out = np.clip(shade.astype(np.float32) + extra, 0, 255).astype(np.uint8)
    np.copyto(shade, out, where=cloth > 0)


def render_identity_sheet(
    apps: list[Appearance],
    *,
    height_px: float = 160,
    views: tuple[float, ...] = (0, 90, 180, 270),
    bg: tuple[int, int, int] = (128, 128, 128),
    phase: float = 0.3,
    stride: float = 0.8,
) -> np.ndarray:
    """Contact sheet (one row per identity, one column per view) for eyeballing the figures."""
    cell_w = int(math.ceil(height_px * 0.62)) + 8
    cell_h = int(math.ceil(height_px * 1.12)) + 8
    sheet = np.empty((max(1, len(apps)) * cell_h, max(1, len(views)) * cell_w, 3), np.uint8)
    sheet[:] = np.array(bg, np.uint8)
    for i, app in enumerate(apps):
        for j, v in enumerate(views):
            sp = render_figure(
                app, height_px=height_px, view_deg=v, phase=phase, stride=stride, seed=i
            )
            gx = j * cell_w + cell_w // 2
            gy = i * cell_h + cell_h - 6
            x0 = round(gx - sp.foot[0])
            y0 = round(gy - sp.foot[1])
            _paste(sheet, sp, x0, y0)
    return sheet


def _paste(img: np.ndarray, sp: Sprite, x0: int, y0: int) -> None:
    """Alpha-blend a sprite into ``img`` at top-left (x0, y0), clipped to the image."""
    h, w = sp.alpha.shape
    H, W = img.shape[:2]
    xa, ya = max(0, x0), max(0, y0)
    xb, yb = min(W, x0 + w), min(H, y0 + h)
    if xa >= xb or ya >= yb:
        return
    a = sp.alpha[ya - y0 : yb - y0, xa - x0 : xb - x0, None]
    src = sp.rgb[ya - y0 : yb - y0, xa - x0 : xb - x0].astype(np.float32)
    dst = img[ya:yb, xa:xb].astype(np.float32)
    img[ya:yb, xa:xb] = np.clip(src * a + dst * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)
