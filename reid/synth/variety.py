"""Domain randomisation for synthetic training crops (``reidtrace synth --crops-only --variety``).

Why: a ReID model trained on the default crops learns absolute clothing colour, because in the
default world a shirt looks almost the same in every camera. Real cameras change that colour
(white balance, exposure, gamma, saturation), real clothes carry texture (plaid, stripes, prints,
folds) and real crops show varied walls, floors and clutter at low resolution. Each knob here
widens one of those distributions, so that what stays constant across a person's crops is what
a model should learn: layout, texture, shape and colour *relations*, not colour values.

Everything is a pure function of a seeded ``numpy`` generator: the same seed renders the same
bytes. ``strength`` (0..1, from the ``--variety`` level) scales every range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from reid.errors import ReidTraceError
from reid.synth.appearance import Appearance
from reid.synth.figure import STYLE_BOTTOM_TEXTURES, STYLE_TOP_TEXTURES, FigureStyle

__all__ = [
    "CROP_SIZES",
    "SEQUENCES_PER_CAMERA",
    "VARIETY_LEVELS",
    "CameraResponse",
    "apply_response",
    "cast_shadow",
    "encode_crop",
    "sample_crop_size",
    "sample_response",
    "sample_style",
    "variety_strength",
    "vary_background",
]

VARIETY_LEVELS: dict[str, float] = {"none": 0.0, "medium": 0.5, "high": 1.0}
"""``--variety`` names and their strength; ``none`` is the default renderer, byte for byte."""

SEQUENCES_PER_CAMERA = 6
"""Recording sequences per camera (Market ``sNN``), each with its own camera response."""

CROP_SIZES: tuple[tuple[tuple[int, int], float], ...] = (
    ((64, 128), 0.35),  # Market-1501
    ((60, 160), 0.25),  # CUHK01 / CUHK03-like
    ((48, 128), 0.2),  # VIPeR-like
    ((56, 144), 0.1),
    ((72, 160), 0.1),
)
"""Output crop sizes (width, height) of varied crops and their weights."""

BGR = tuple[int, int, int]


def variety_strength(name: str) -> float:
    """The strength of a ``--variety`` level; an unknown name is a one-line error."""
    if name not in VARIETY_LEVELS:
        raise ReidTraceError(
            f"unknown variety {name!r}", hint=f"choose one of {', '.join(VARIETY_LEVELS)}"
        )
    return VARIETY_LEVELS[name]


# --------------------------------------------------------------------------------------------
# Clothing


def _color(rng: np.random.Generator) -> BGR:
    """Any clothing colour: a third neutral (grey to black/white), the rest of the hue circle."""
    if rng.uniform() < 0.33:
        v = int(rng.uniform(15, 240))
        return (v, v, v)
    hsv = np.array(
        [[[rng.uniform(0, 180), rng.uniform(0.25, 1.0) * 255, rng.uniform(0.2, 0.95) * 255]]],
        np.float32,
    )
    b, g, r = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return (int(b), int(g), int(r))


def _far_color(rng: np.random.Generator, base: BGR, min_dist: float = 70.0) -> BGR:
    """A colour that stays visible next to ``base`` (a pattern must show after downsampling)."""
    c = _color(rng)
    for _ in range(8):
        if math.dist(c, base) >= min_dist:
            break
        c = _color(rng)
    return c


def sample_style(rng: np.random.Generator, app: Appearance, strength: float) -> FigureStyle:
    """Extra clothing detail for one identity (the root of a twin family: twins share it)."""
    s = float(strength)
    top_w = np.array([0.0, 1.4, 0.8, 0.9, 0.9, 0.6, 0.8, 0.7, 0.8, 0.8])
    top_tex = "none"
    if rng.uniform() < 0.7 * s:
        top_tex = STYLE_TOP_TEXTURES[int(rng.choice(len(top_w), p=top_w / top_w.sum()))]
    top_colors = tuple(_far_color(rng, app.top_color) for _ in range(3))
    bot_w = np.array([0.0, 1.0, 0.8, 0.5, 1.0])
    bot_tex = "none"
    if rng.uniform() < 0.35 * s:
        bot_tex = STYLE_BOTTOM_TEXTURES[int(rng.choice(len(bot_w), p=bot_w / bot_w.sum()))]
    bottom_colors = tuple(_far_color(rng, app.bottom_color, 50.0) for _ in range(2))
    sleeve = _far_color(rng, app.top_color) if rng.uniform() < 0.3 * s else None
    bag = _color(rng) if rng.uniform() < 0.7 * s else None
    return FigureStyle(
        top_texture=top_tex,
        top_colors=top_colors,
        top_scale=float(rng.uniform(0.6, 1.5)),
        bottom_texture=bot_tex,
        bottom_colors=bottom_colors,
        sleeve_color=sleeve,
        bag_color=bag,
        fabric_gain=float(rng.uniform(1.0, 1.0 + 2.5 * s)),
        folds=float(rng.uniform(0.2, 1.0) * s),
        seed=int(rng.integers(0, 1 << 30)),
    )


# --------------------------------------------------------------------------------------------
# Camera response


@dataclass(frozen=True)
class CameraResponse:
    """How one camera, in one recording sequence, turns scene light into JPEG pixels."""

    wb: tuple[float, float, float]  # white-balance gains, BGR
    exposure: float
    gamma: float
    saturation: float
    contrast: float
    blur: float  # Gaussian sigma in frame pixels
    noise: float  # sensor noise sigma in grey levels
    jpeg: int  # JPEG quality of the camera's own compression
    light_deg: float  # where the light comes from, seen from the camera (``render_figure``)
    shadow: float  # chance that a crop has a cast shadow across it

    def jitter(self, rng: np.random.Generator, strength: float) -> CameraResponse:
        """The same camera in another sequence: light, white balance and exposure drift."""
        s = float(strength)
        t = rng.normal(0, 0.06 * s)  # colour temperature: warmer / cooler
        wb = tuple(
            float(np.clip(g * math.exp(d), 0.45, 2.0))
            for g, d in zip(self.wb, (-t, 0.0, t), strict=True)
        )
        return CameraResponse(
            wb=wb,  # type: ignore[arg-type]
            exposure=float(np.clip(self.exposure * math.exp(rng.normal(0, 0.12 * s)), 0.45, 2.0)),
            gamma=self.gamma,
            saturation=self.saturation,
            contrast=self.contrast,
            blur=self.blur,
            noise=self.noise,
            jpeg=self.jpeg,
            light_deg=float((self.light_deg + rng.normal(0, 40 * s)) % 360),
            shadow=self.shadow,
        )


def sample_response(rng: np.random.Generator, strength: float) -> CameraResponse:
    """A random camera: white balance, exposure, gamma, saturation, contrast, optics, noise."""
    s = float(strength)
    t = rng.normal(0, 0.14 * s)  # colour temperature
    tint = rng.normal(0, 0.06 * s)  # green-magenta
    wb = (
        math.exp(-t + rng.normal(0, 0.05 * s)),
        math.exp(tint),
        math.exp(t + rng.normal(0, 0.05 * s)),
    )
    return CameraResponse(
        wb=tuple(float(np.clip(g, 0.45, 2.0)) for g in wb),  # type: ignore[arg-type]
        # centred a little brighter, punchier and less saturated than the renderer's scenes:
        # real surveillance crops (CUHK01: mean grey 100, contrast 58, HSV saturation 25) are
        # brighter and far greyer than the default crops (109, 48, 69)
        exposure=float(np.clip(math.exp(rng.normal(0.05 * s, 0.2 * s)), 0.5, 1.9)),
        gamma=float(np.clip(math.exp(rng.normal(0.1 * s, 0.15 * s)), 0.5, 2.0)),
        saturation=float(rng.uniform(1.0 - 0.8 * s, 1.0 + 0.1 * s)),
        contrast=float(rng.uniform(1.0 - 0.05 * s, 1.0 + 0.45 * s)),
        blur=float(rng.uniform(0.0, 0.8 * s)),
        noise=float(rng.uniform(0.5, 0.5 + 7.0 * s)),
        jpeg=int(rng.integers(int(round(95 - 60 * s)), 96)),
        light_deg=float(rng.uniform(0, 360)),
        shadow=0.35 * s,
    )


def apply_response(img: np.ndarray, r: CameraResponse, rng: np.random.Generator) -> np.ndarray:
    """Image formation of ``r`` on a BGR uint8 image (a frame region); returns a new image."""
    x = img.astype(np.float32) * np.float32(1.0 / 255.0)
    x *= np.array(r.wb, np.float32) * np.float32(r.exposure)
    np.clip(x, 0.0, 1.0, out=x)
    x **= np.float32(1.0 / r.gamma)
    luma = x @ np.array([0.114, 0.587, 0.299], np.float32)
    x = luma[..., None] + (x - luma[..., None]) * np.float32(r.saturation)
    x = 0.5 + (x - 0.5) * np.float32(r.contrast)
    x = np.clip(x * 255.0, 0, 255)
    if r.blur > 0.15:
        x = cv2.GaussianBlur(x, (0, 0), r.blur)
    if r.noise > 0:
        # luminance-correlated and per-channel noise, as in a demosaiced sensor
        h, w = x.shape[:2]
        x += rng.normal(0, r.noise * 0.7, (h, w, 1)).astype(np.float32)
        x += rng.normal(0, r.noise * 0.5, (h, w, 3)).astype(np.float32)
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, r.jpeg])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def cast_shadow(img: np.ndarray, rng: np.random.Generator) -> None:
    """A soft-edged shadow (a building, a tree) over part of a region, in place."""
    h, w = img.shape[:2]
    ang = rng.uniform(0, 2 * math.pi)
    nx, ny = math.cos(ang), math.sin(ang)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (xx - rng.uniform(0.2, 0.8) * w) * nx + (yy - rng.uniform(0.2, 0.8) * h) * ny
    soft = max(1.0, rng.uniform(0.01, 0.08) * max(h, w))
    m = 1.0 / (1.0 + np.exp(-d / soft))
    k = 1.0 - rng.uniform(0.25, 0.5) * m
    img[:] = np.clip(img * k[..., None], 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Backgrounds


def _shade(c: BGR, k: float) -> BGR:
    return tuple(int(np.clip(v * k, 0, 255)) for v in c)  # type: ignore[return-value]


def _surface(rng: np.random.Generator, h: int, w: int, scale: float, kind: str) -> np.ndarray:
    """A textured wall or floor, ``scale`` px per brick row / tile."""
    # mostly neutral and muted: walls and floors are rarely as saturated as clothes
    grey = float(rng.uniform(60, 210))
    c = _color(rng)
    t = rng.uniform(0.55, 0.95)
    base: BGR = tuple(int(grey * t + v * (1 - t)) for v in c)  # type: ignore[assignment]
    img = np.empty((h, w, 3), np.uint8)
    img[:] = base
    line = _shade(base, rng.uniform(0.55, 0.85))
    t = max(1, int(round(scale / 12)))
    if kind == "brick":
        bh, bw = max(3, int(scale * 0.5)), max(6, int(scale * 1.3))
        for r, y in enumerate(range(0, h, bh)):
            cv2.line(img, (0, y), (w, y), line, t)
            off = (bw // 2) * (r % 2)
            for x in range(-off, w, bw):
                cv2.line(img, (x, y), (x, y + bh), line, t)
    elif kind == "tiles":
        sz = max(4, int(scale))
        for y in range(int(rng.integers(0, sz)), h, sz):
            cv2.line(img, (0, y), (w, y), line, t)
        for x in range(int(rng.integers(0, sz)), w, sz):
            cv2.line(img, (x, 0), (x, h), line, t)
    elif kind == "panels":
        sz = max(6, int(scale * rng.uniform(1.5, 4)))
        for x in range(int(rng.integers(0, sz)), w, sz):
            cv2.line(img, (x, 0), (x, h), line, t)
    elif kind == "windows":
        sz = max(8, int(scale * 2))
        dark = _shade(_color(rng), 0.4)
        for y in range(2, h, sz):
            for x in range(2, w, sz):
                cv2.rectangle(img, (x, y), (x + int(sz * 0.7), y + int(sz * 0.75)), dark, -1)
    # low-frequency stains and fine grain, so no surface is perfectly flat
    small = rng.normal(0, 1, (max(2, h // 24), max(2, w // 24), 1)).astype(np.float32)
    stain = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    grain = rng.normal(0, 1, (h, w, 1)).astype(np.float32)
    noise = stain * rng.uniform(3, 14) + grain * rng.uniform(2, 8)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _clutter(img: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """A few props behind the person: poles, boxes and signs, bushes, railings."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(4))
        c = _color(rng)
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0.1 * h, h))
        if kind == 0:  # pole
            pw = max(2, int(scale * rng.uniform(0.15, 0.5)))
            cv2.rectangle(img, (x, 0), (x + pw, y), c, -1)
        elif kind == 1:  # box / sign / bin
            bw, bh = int(scale * rng.uniform(0.8, 3)), int(scale * rng.uniform(0.8, 3))
            cv2.rectangle(img, (x, y - bh), (x + bw, y), c, -1)
            cv2.rectangle(img, (x, y - bh), (x + bw, y), _shade(c, 0.6), max(1, int(scale / 10)))
        elif kind == 2:  # bush / planter
            r = max(3, int(scale * rng.uniform(0.6, 2)))
            cv2.ellipse(img, (x, y), (r, int(r * 0.7)), 0, 0, 360, c, -1)
        else:  # railing
            yy = int(rng.uniform(0.3, 0.7) * h)
            t = max(1, int(scale / 8))
            cv2.line(img, (0, yy), (w, yy), c, t)
            step = max(4, int(scale * rng.uniform(0.5, 1.5)))
            for xx in range(int(rng.integers(0, step)), w, step):
                cv2.line(img, (xx, yy), (xx, min(h, yy + int(scale * 2))), c, t)


def vary_background(
    region: np.ndarray, rng: np.random.Generator, strength: float, hpx: float
) -> None:
    """Replace or dress the background of a crop's region, in place (before the person).

    ``hpx`` (the person's height in pixels) sets the texture scale, so bricks and tiles keep a
    plausible size next to the person.
    """
    s = float(strength)
    h, w = region.shape[:2]
    if h < 4 or w < 4:
        return
    scale = max(3.0, hpx / 10.0)
    if rng.uniform() < 0.6 * s:
        horizon = int(rng.uniform(0.15, 0.75) * h)
        wall_kind = ("brick", "tiles", "panels", "windows", "plain")[int(rng.integers(5))]
        floor_kind = ("tiles", "brick", "plain")[int(rng.integers(3))]
        region[:horizon] = _surface(rng, horizon, w, scale, wall_kind) if horizon else region[:0]
        region[horizon:] = _surface(rng, h - horizon, w, scale * 0.8, floor_kind)
    if rng.uniform() < 0.6 * s:
        _clutter(region, rng, scale)


# --------------------------------------------------------------------------------------------
# Output crops


def sample_crop_size(rng: np.random.Generator, strength: float) -> tuple[int, int]:
    """(width, height) of one varied crop: Market, CUHK01-like, VIPeR-like and between."""
    if rng.uniform() >= strength:
        return CROP_SIZES[0][0]
    w = np.array([p for _, p in CROP_SIZES])
    return CROP_SIZES[int(rng.choice(len(w), p=w / w.sum()))][0]


def encode_crop(
    frame: np.ndarray,
    box: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator,
    strength: float,
) -> bytes:
    """Cut ``box`` with context to the aspect of ``size``, maybe at a lower resolution, JPEG.

    The box grows (never shrinks) to the output aspect, so a person is not stretched; a share
    of crops are first reduced to as little as 40 % of the output size (a far, small person
    upscaled, as real low-resolution crops are).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    ctx = 1.0 + rng.uniform(0.0, 0.15 * strength)
    bh2 = bh * ctx
    bw2 = max(bw * ctx, bh2 * size[0] / size[1] * rng.uniform(0.92, 1.08))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0, x1 = cx - bw2 / 2, cx + bw2 / 2
    y0, y1 = cy - bh2 / 2, cy + bh2 / 2
    x0i, y0i, x1i, y1i = (int(round(v)) for v in (x0, y0, x1, y1))
    h, w = frame.shape[:2]
    pad = max(0, -x0i, -y0i, x1i - w, y1i - h)
    src = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else frame
    patch = src[y0i + pad : y1i + pad, x0i + pad : x1i + pad]
    if rng.uniform() < 0.35 * strength:
        f = rng.uniform(0.4, 0.85)
        small = (max(8, int(size[0] * f)), max(16, int(size[1] * f)))
        patch = cv2.resize(patch, small, interpolation=cv2.INTER_AREA)
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_LINEAR)
    else:
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 96))])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
