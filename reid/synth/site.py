"""The site: a campus-like ground plane in metres, its walkways, scene objects and cameras.

Everything static about the world lives here: the walk graph people route on, the zones where
they linger, the props that occlude them, the buildings around the edge and the camera rigs
(some overlapping, some far apart). ``render_background`` turns one camera's view of it into an
image plus the props as depth-sorted sprites, so the renderer can put a prop back in front of a
person who walks behind it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np

from reid.geometry import PinholeCamera, apply_homography

# --- walk graph --------------------------------------------------------------------------------
# Nodes in metres. Entrances are where people appear and leave; zones are where they linger.
NODES: dict[str, tuple[float, float]] = {
    "gate_w": (-8.0, 14.0),
    "gate_s": (18.0, -8.0),
    "plaza": (18.0, 14.0),
    "junction": (44.0, 14.0),
    "corridor_w": (62.0, 13.0),
    "corridor": (80.0, 13.0),
    "corridor_e": (96.0, 13.0),
    "gate_e": (112.0, 13.0),
    "lane": (30.0, 42.0),
    "hall": (30.0, 76.0),
    "gate_n": (30.0, 100.0),
    "yard": (70.0, 46.0),
    "gate_ne": (95.0, 60.0),
}
EDGES: list[tuple[str, str]] = [
    ("gate_w", "plaza"),
    ("gate_s", "plaza"),
    ("plaza", "junction"),
    ("junction", "corridor_w"),
    ("corridor_w", "corridor"),
    ("corridor", "corridor_e"),
    ("corridor_e", "gate_e"),
    ("plaza", "lane"),
    ("junction", "lane"),
    ("lane", "hall"),
    ("hall", "gate_n"),
    ("junction", "yard"),
    ("yard", "gate_ne"),
    ("yard", "corridor"),
]
ENTRANCES = ("gate_w", "gate_s", "gate_e", "gate_n", "gate_ne")
# Zones where people stop (centre, radius in metres).
ZONES: dict[str, tuple[tuple[float, float], float]] = {
    "plaza": ((18.0, 14.0), 7.0),
    "corridor": ((80.0, 13.0), 2.0),
    "hall": ((30.0, 76.0), 6.0),
    "yard": ((70.0, 46.0), 5.0),
}


def shortest_path(a: str, b: str) -> list[str]:
    """Dijkstra over the walk graph (small enough that a hand-written loop is clearer)."""
    adj: dict[str, list[str]] = {n: [] for n in NODES}
    for u, v in EDGES:
        adj[u].append(v)
        adj[v].append(u)
    dist = {a: 0.0}
    prev: dict[str, str] = {}
    heap = [(0.0, a)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == b:
            break
        if d > dist.get(u, math.inf):
            continue
        for v in adj[u]:
            nd = d + math.dist(NODES[u], NODES[v])
            if nd < dist.get(v, math.inf):
                dist[v], prev[v] = nd, u
                heapq.heappush(heap, (nd, v))
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


# --- static scene ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prop:
    """A prism standing on the ground: footprint polygon (metres) extruded from z0 to z1."""

    kind: str
    footprint: tuple[tuple[float, float], ...]
    z0: float
    z1: float
    color: tuple[int, int, int]  # BGR

    @property
    def centre(self) -> tuple[float, float]:
        pts = np.asarray(self.footprint)
        return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def _circle(cx: float, cy: float, r: float, n: int = 12) -> tuple[tuple[float, float], ...]:
    return tuple(
        (cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n))
        for k in range(n)
    )


def _rect(cx: float, cy: float, w: float, d: float, ang: float = 0.0) -> tuple:
    c, s = math.cos(math.radians(ang)), math.sin(math.radians(ang))
    pts = [(-w / 2, -d / 2), (w / 2, -d / 2), (w / 2, d / 2), (-w / 2, d / 2)]
    return tuple((cx + x * c - y * s, cy + x * s + y * c) for x, y in pts)


def _props() -> list[Prop]:
    """Props that occlude people: pillars, trees, lamp posts, bins, benches, planters, a kiosk."""
    out: list[Prop] = []
    for x, y in [(10, 8), (26, 8), (10, 20), (26, 20)]:  # plaza pillars of a canopy
        out.append(Prop("pillar", _circle(x, y, 0.3), 0.0, 3.4, (150, 150, 155)))
    for x, y in [(5, 26), (32, 2), (40, 24), (24, 58), (37, 60), (62, 40), (78, 52)]:
        out.append(Prop("trunk", _circle(x, y, 0.18, 8), 0.0, 2.4, (40, 60, 85)))
        out.append(Prop("canopy", _circle(x, y, 1.9, 10), 2.4, 5.0, (50, 110, 60)))
    for x, y in [(14, 3), (35, 17), (55, 10), (72, 16), (88, 10), (30, 66), (25, 86)]:
        out.append(Prop("lamp", _circle(x, y, 0.07, 6), 0.0, 4.5, (60, 60, 60)))
    for x, y in [(21, 10), (48, 17), (84, 16), (34, 72), (66, 44)]:
        out.append(Prop("bin", _circle(x, y, 0.28, 10), 0.0, 0.95, (40, 90, 40)))
    for x, y, a in [(13, 23, 0), (24, 5, 0), (27, 80, 90), (74, 49, 20)]:
        out.append(Prop("bench", _rect(x, y, 1.8, 0.5, a), 0.0, 0.5, (60, 90, 130)))
    for x, y in [(16, 17), (36, 78), (68, 41)]:
        out.append(Prop("planter", _rect(x, y, 1.2, 1.2), 0.0, 0.8, (110, 120, 130)))
    out.append(Prop("kiosk", _rect(40, 6, 3.0, 2.0), 0.0, 2.6, (90, 140, 190)))
    out.append(Prop("car", _rect(56, 22, 4.4, 1.8, 5), 0.0, 1.45, (150, 60, 40)))
    out.append(Prop("car", _rect(100, 20, 4.4, 1.8, 0), 0.0, 1.45, (200, 200, 205)))
    return out


def _buildings() -> list[Prop]:
    """Large blocks around the edge, always behind the walkways as seen by the cameras."""
    b = [
        ((-30, -30), (-16, 40), (110, 140, 160)),
        ((-16, -30), (50, -16), (120, 120, 140)),
        ((50, -30), (120, -2), (100, 110, 120)),
        ((4, 30), (18, 64), (130, 150, 170)),
        ((42, 26), (58, 36), (140, 140, 150)),
        ((42, 62), (60, 110), (115, 125, 135)),
        ((-10, 64), (16, 110), (135, 130, 120)),
        ((60, 20), (76, 34), (125, 135, 150)),
        ((84, 22), (120, 40), (120, 130, 125)),
        ((100, 64), (130, 110), (130, 130, 130)),
    ]
    out = []
    for (x0, y0), (x1, y1), col in b:
        h = 7.0 + ((x0 * 7 + y0 * 13) % 9)
        out.append(Prop("building", ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), 0.0, h, col))
    return out


PROPS = _props()
BUILDINGS = _buildings()
WALKWAY_WIDTH = 4.0


# --- cameras -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraRig:
    """One camera's placement at the 480-px-wide reference resolution, plus its look."""

    name: str
    position: tuple[float, float, float]
    yaw_deg: float
    pitch_deg: float
    focal_480: float  # focal length in pixels at 480 px image width
    gain: float = 1.0  # exposure
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # BGR white balance
    gamma: float = 1.0
    blur: float = 0.0  # Gaussian sigma in pixels at 480 px
    noise: float = 2.0  # sensor noise std (8-bit levels)
    jpeg: int = 80  # per-frame JPEG quality before the video codec
    start_offset_s: float = 0.0  # camera clocks are not aligned
    extra: dict = field(default_factory=dict)

    def camera(self, width: int, height: int) -> PinholeCamera:
        return PinholeCamera(
            width=width,
            height=height,
            focal_px=self.focal_480 * width / 480.0,
            position=self.position,
            yaw_deg=self.yaw_deg,
            pitch_deg=self.pitch_deg,
        )


# cam1 and cam2 overlap on the plaza from opposite sides; cam3 is a close corridor view (people up
# to ~250 px); cam4 watches the far hall from high up (people ~40-80 px). The rest extend the site.
# Blur is modest: 480x360 footage is usually downscaled from a larger sensor, which sharpens it.
# One camera per row reads better than one value per row.
# fmt: off
RIGS: tuple[CameraRig, ...] = tuple(
    CameraRig(name, pos, yaw, pitch, f, gain, cast, gamma, blur, noise, jpeg, offset)
    for name, pos, yaw, pitch, f, gain, cast, gamma, blur, noise, jpeg, offset in [
        # name, position (m), yaw, pitch, focal, gain, BGR cast, gamma, blur, noise, JPEG q, clock
        ("cam1", (7.0, 2.0, 5.5), 42.0, 28.0, 600, 1.05, (1.0, 1.0, 1.04), 1.0, 0.3, 2.5, 75, 0.0),
        ("cam2", (31.0, 25.0, 4.0), 218.0, 19.0, 620, 0.92, (1.1, 1.0, 0.9), 1.1, 0.45, 3.0, 70, 1.37),
        ("cam3", (66.0, 13.0, 3.6), 0.0, 14.0, 700, 1.0, (0.95, 1.02, 1.08), 0.9, 0.35, 2.0, 80, 2.91),
        ("cam4", (30.0, 60.0, 6.5), 90.0, 24.0, 540, 0.95, (1.06, 1.04, 0.9), 1.05, 0.45, 4.0, 60, 0.62),
        ("cam5", (56.0, 56.0, 5.0), -45.0, 22.0, 420, 1.1, (0.9, 1.0, 1.1), 1.0, 0.6, 3.0, 70, 4.2),
        ("cam6", (106.0, 16.0, 4.0), 180.0, 14.0, 470, 0.95, (1.0, 0.96, 1.0), 0.95, 0.8, 3.5, 65, 3.3),
        ("cam7", (24.0, 34.0, 4.5), 270.0, 22.0, 400, 1.0, (1.05, 1.0, 0.95), 1.05, 0.5, 2.5, 75, 5.1),
        ("cam8", (-4.0, 30.0, 5.0), -35.0, 20.0, 440, 0.9, (0.92, 1.0, 1.06), 1.0, 0.9, 3.0, 65, 0.2),
    ]
)
# fmt: on
MAX_CAMERAS = len(RIGS)


# --- rendering the static view -----------------------------------------------------------------
TEX_PX_PER_M = 10.0
TEX_ORIGIN = (-40.0, -40.0)
TEX_SIZE_M = (180.0, 170.0)


GROUT = 0.9


def _mottle(rng: np.random.Generator, h: int, w: int, std: float) -> np.ndarray:
    """Ground wear and stains: mostly broad blotches (~0.5-2 m), a little fine grain.

    Real paving seen from a few metres is smooth at the scale of a person; i.i.d. noise per
    10 cm texel looked like coarse gravel, and that clutter hid people from a COCO detector
    (real PETS people pasted into such scenes were missed too, see docs/detectors.md).
    """
    coarse = cv2.resize(
        rng.normal(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32),
        (w + 16, h + 16),
        interpolation=cv2.INTER_CUBIC,
    )[8 : 8 + h, 8 : 8 + w]
    fine = rng.normal(0, 1, (h, w)).astype(np.float32)
    return (std * (0.85 * coarse + 0.35 * fine))[..., None]


def _paving(rng: np.random.Generator, h: int, w: int, base: tuple[int, int, int]) -> np.ndarray:
    """Slabs of one colour with worn patches and grout joints every 1.5 m."""
    tiles = np.full((h, w, 3), base, np.float32) + _mottle(rng, h, w, 5.0)
    step = int(1.5 * TEX_PX_PER_M)
    # grout joints are ~1 cm wide: at 10 cm per texel they only tint their texel row a little
    tiles[::step] *= GROUT
    tiles[:, ::step] *= GROUT
    return tiles


@cache
def ground_texture(seed: int) -> np.ndarray:
    """The whole site's ground as one BGR image (asphalt, paving, grass, walkways, markings)."""
    rng = np.random.default_rng(seed)
    w, h = int(TEX_SIZE_M[0] * TEX_PX_PER_M), int(TEX_SIZE_M[1] * TEX_PX_PER_M)

    def px(x: float, y: float) -> tuple[int, int]:
        return int((x - TEX_ORIGIN[0]) * TEX_PX_PER_M), int((y - TEX_ORIGIN[1]) * TEX_PX_PER_M)

    grass = np.empty((h, w, 3), np.float32)
    grass[:] = (55, 120, 85)
    grass += _mottle(rng, h, w, 10.0) * np.array([0.6, 1.0, 0.7], np.float32)
    tex = grass
    # walkways: asphalt bands along the graph edges
    asphalt = np.zeros((h, w), np.uint8)
    for u, v in EDGES:
        cv2.line(asphalt, px(*NODES[u]), px(*NODES[v]), 255, int(WALKWAY_WIDTH * TEX_PX_PER_M))
    for (cx, cy), r in ZONES.values():
        cv2.circle(asphalt, px(cx, cy), int((r + 3) * TEX_PX_PER_M), 255, -1)
    stone = np.full((h, w, 3), (120, 125, 128), np.float32)
    stone += _mottle(rng, h, w, 6.0)
    m = (asphalt > 0)[..., None]
    tex = np.where(m, stone, tex)
    # Paved areas: light slabs with grout every 1.5 m. The corridor had a dark floor with a road's
    # centre-line dashes and the hall sand-coloured paving; NanoDet found lone people there 1.3-2.5x
    # less often than on this paving (benchmarks/scene_context.py, docs/detectors.md).
    for (x0, y0, x1, y1), base in (
        ((2, 0, 36, 28), (165, 170, 178)),  # plaza
        ((58, 9, 104, 17), (150, 155, 160)),  # corridor
        ((20, 66, 41, 92), (158, 168, 180)),  # hall forecourt, warmer slabs
    ):
        area = np.zeros((h, w), np.uint8)
        cv2.rectangle(area, px(x0, y0), px(x1, y1), 255, -1)
        tex = np.where((area > 0)[..., None], _paving(rng, h, w, base), tex)
    return np.clip(tex, 0, 255).astype(np.uint8)


def _shade(color: tuple[int, int, int], normal: np.ndarray, light: np.ndarray) -> tuple:
    k = 0.55 + 0.45 * max(0.0, float(normal @ light))
    return tuple(int(min(255, c * k)) for c in color)


def draw_prop(
    img: np.ndarray, cam: PinholeCamera, prop: Prop, light: np.ndarray, alpha: np.ndarray | None
) -> None:
    """Draw a prism with back-face culling and Lambert shading; also fill ``alpha`` when given."""
    foot = np.asarray(prop.footprint, np.float64)
    n = len(foot)
    lo = np.column_stack([foot, np.full(n, prop.z0)])
    hi = np.column_stack([foot, np.full(n, prop.z1)])
    cam_xy = np.asarray(cam.position[:2])
    faces = []
    ctr = foot.mean(axis=0)
    for k in range(n):
        a, b = foot[k], foot[(k + 1) % n]
        normal = np.array([b[1] - a[1], -(b[0] - a[0]), 0.0])
        if normal[:2] @ ((a + b) / 2 - ctr) < 0:
            normal = -normal
        normal /= np.linalg.norm(normal) + 1e-9
        if normal[:2] @ (cam_xy - (a + b) / 2) <= 0:
            continue  # faces away from the camera
        quad = np.stack([lo[k], lo[(k + 1) % n], hi[(k + 1) % n], hi[k]])
        dist = float(np.linalg.norm((a + b) / 2 - cam_xy))
        faces.append((dist, quad, _shade(prop.color, normal, light)))
    if cam.position[2] > prop.z1:
        faces.append((-1.0, hi, _shade(prop.color, np.array([0, 0, 1.0]), light)))
    faces.sort(key=lambda f: -f[0])
    for _, poly, col in faces:
        uv, depth = cam.project(poly)
        if (depth <= 0.1).any():
            continue
        pts = np.round(uv * 4).astype(np.int32)  # 2 fractional bits of sub-pixel precision
        cv2.fillPoly(img, [pts], col, cv2.LINE_AA, shift=2)
        if prop.kind == "building" and len(poly) == 4:
            _windows(img, uv, col)
        if alpha is not None:
            cv2.fillPoly(alpha, [pts], 255, cv2.LINE_8, shift=2)


def _windows(img: np.ndarray, quad_uv: np.ndarray, col: tuple) -> None:
    """Rows of dark windows on a facade quad (bilinear in the quad's corners)."""
    p0, p1, p2, p3 = quad_uv  # bottom-left, bottom-right, top-right, top-left
    dark = tuple(int(c * 0.45) for c in col)
    for i in range(1, 8, 2):
        for j in range(1, 6, 2):
            corners = []
            for du, dv in (
                (i / 8, j / 6),
                ((i + 1) / 8, j / 6),
                ((i + 1) / 8, (j + 0.7) / 6),
                (i / 8, (j + 0.7) / 6),
            ):
                bottom = p0 + (p1 - p0) * du
                top = p3 + (p2 - p3) * du
                corners.append(bottom + (top - bottom) * dv)
            pts = np.round(np.asarray(corners) * 4).astype(np.int32)
            cv2.fillPoly(img, [pts], dark, cv2.LINE_AA, shift=2)


@dataclass
class PropSprite:
    """A prop as it appears in one camera: where to paste it and how far away it stands."""

    prop: Prop
    x0: int
    y0: int
    rgb: np.ndarray
    alpha: np.ndarray  # uint8 mask
    depth: float  # distance on the ground from the camera to the prop's centre


def render_background(
    cam: PinholeCamera, seed: int, light_deg: float = 35.0
) -> tuple[np.ndarray, list[PropSprite]]:
    """The empty scene as this camera sees it, and the props that can occlude people."""
    w, h = cam.width, cam.height
    light = np.array([math.cos(math.radians(light_deg)), math.sin(math.radians(light_deg)), 0.8])
    light /= np.linalg.norm(light)
    # sky gradient
    img = np.empty((h, w, 3), np.uint8)
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    sky = (1 - rows) * np.array([235, 205, 170], np.float32) + rows * np.array([225, 215, 205])
    img[:] = sky[:, None, :].astype(np.uint8)
    # ground: per-pixel ray cast through the inverse homography, sampled from the site texture
    uu, vv = np.meshgrid(np.arange(w, dtype=np.float64) + 0.5, np.arange(h, dtype=np.float64) + 0.5)
    pix = np.column_stack([uu.ravel(), vv.ravel()])
    rays = np.column_stack([pix - [w / 2, h / 2], np.full(len(pix), cam.focal_px)]) @ cam.R
    down = rays[:, 2] < -1e-6
    ground = apply_homography(cam.image_to_ground, pix)
    dist = np.hypot(*(ground - np.asarray(cam.position[:2])).T)
    valid = down & (dist < 400)
    tex = ground_texture(seed)
    mx = ((ground[:, 0] - TEX_ORIGIN[0]) * TEX_PX_PER_M).astype(np.float32)
    my = ((ground[:, 1] - TEX_ORIGIN[1]) * TEX_PX_PER_M).astype(np.float32)
    mx[~valid], my[~valid] = -1, -1
    sampled = cv2.remap(
        tex,
        mx.reshape(h, w),
        my.reshape(h, w),
        cv2.INTER_AREA if False else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(70, 125, 90),
    )
    # far ground is minified a lot: soften it with distance, then fade into haze
    soft = cv2.GaussianBlur(sampled, (0, 0), 1.2)
    near = (dist < 25).reshape(h, w)[..., None]
    sampled = np.where(near, sampled, soft)
    haze = np.clip((dist - 60) / 200, 0, 0.7).reshape(h, w, 1).astype(np.float32)
    ground_img = sampled.astype(np.float32) * (1 - haze) + haze * np.array([200, 200, 200])
    img = np.where(valid.reshape(h, w)[..., None], ground_img.astype(np.uint8), img)
    # buildings go straight into the background, far to near
    cam_xy = np.asarray(cam.position[:2])
    for b in sorted(BUILDINGS, key=lambda p: -np.linalg.norm(np.asarray(p.centre) - cam_xy)):
        draw_prop(img, cam, b, light, None)
    # props: drawn into the background too, and kept as sprites for occlusion
    sprites: list[PropSprite] = []
    for prop in sorted(PROPS, key=lambda p: -np.linalg.norm(np.asarray(p.centre) - cam_xy)):
        depth = float(np.linalg.norm(np.asarray(prop.centre) - cam_xy))
        pts3 = np.concatenate(
            [
                np.column_stack([prop.footprint, np.full(len(prop.footprint), z)])
                for z in (prop.z0, prop.z1)
            ]
        )
        uv, d = cam.project(pts3)
        if (d <= 0.1).any():
            continue
        x0, y0 = np.floor(uv.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        layer = img.copy()
        mask = np.zeros((h, w), np.uint8)
        draw_prop(layer, cam, prop, light, mask)
        img = layer
        sprites.append(
            PropSprite(
                prop, int(x0), int(y0), layer[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy(), depth
            )
        )
    return img, sprites
