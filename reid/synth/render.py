"""Render one camera of the world: background, people in depth order, camera effects, truth.

The renderer is the only place where the world becomes pixels, so it is also where the truth is
measured: every ground-truth box is the extent of the person's rendered silhouette, and its
visibility is the share of that silhouette left uncovered by nearer people, props and the frame
edge. A depth-ordered label buffer does both in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from reid.boxes import box_iou, clip_boxes, xywh_to_xyxy
from reid.geometry import PinholeCamera
from reid.synth.figure import render_figure
from reid.synth.people import Person
from reid.synth.site import CameraRig, PropSprite, render_background

SUN_AZIMUTH_DEG = 35.0
CONSIDER_MIN_VISIBILITY = 0.25  # MOT "consider" flag: rows below are kept but marked 0
CROP_MIN_VISIBILITY = 0.6
CROP_MIN_HEIGHT_PX = 24


@dataclass(frozen=True)
class CameraLook:
    """Per-camera image formation: exposure, white balance, gamma, blur, noise, compression."""

    gain: float
    cast: tuple[float, float, float]
    gamma: float
    blur: float
    noise: float
    jpeg: int

    @classmethod
    def from_rig(cls, rig: CameraRig, difficulty: float, width: int) -> CameraLook:
        k = 0.5 + difficulty  # difficulty 0.5 renders the rig as specified
        cast = tuple(1.0 + (c - 1.0) * k for c in rig.cast)
        return cls(
            gain=1.0 + (rig.gain - 1.0) * k,
            cast=cast,  # type: ignore[arg-type]
            gamma=1.0 + (rig.gamma - 1.0) * k,
            blur=rig.blur * k * width / 480.0,
            noise=rig.noise * k,
            jpeg=int(np.clip(rig.jpeg - 30 * (difficulty - 0.5), 30, 95)),
        )

    def luts(self, drift: float) -> list[np.ndarray]:
        """One 256-entry table per BGR channel: gain x cast, then gamma; ``drift`` ~ clouds."""
        x = np.arange(256, dtype=np.float32) / 255.0
        out = []
        for c in self.cast:
            y = np.clip(x * self.gain * c * drift, 0, 1) ** (1.0 / self.gamma)
            out.append(np.round(y * 255).astype(np.uint8))
        return out


def light_drift(t: float, cam_number: int) -> float:
    """Slow exposure changes (clouds, auto-exposure): a few percent over ~50 s."""
    return 1.0 + 0.06 * math.sin(2 * math.pi * (t / 47.0 + cam_number / 5))


def make_noise_bank(
    look: CameraLook, rng: np.random.Generator, height: int, width: int
) -> list[np.ndarray]:
    """A few sensor-noise fields, reused with random shifts (drawing fresh noise costs more)."""
    return [rng.normal(0, look.noise, (height, width, 1)).astype(np.float32) for _ in range(6)]


def apply_look(
    frame: np.ndarray,
    look: CameraLook,
    drift: float,
    rng: np.random.Generator,
    noise_bank: list[np.ndarray],
) -> np.ndarray:
    """Image formation of one camera: exposure/white balance/gamma, optics blur, sensor noise,
    and the camera's own JPEG compression artefacts."""
    luts = look.luts(drift)
    frame = cv2.merge([cv2.LUT(ch, lut) for ch, lut in zip(cv2.split(frame), luts, strict=True)])
    if look.blur > 0.05:
        frame = cv2.GaussianBlur(frame, (0, 0), look.blur)
    if look.noise > 0:
        h, w = frame.shape[:2]
        noise = noise_bank[int(rng.integers(len(noise_bank)))]
        oy = int(rng.integers(0, noise.shape[0] - h + 1))
        ox = int(rng.integers(0, noise.shape[1] - w + 1))
        shift = int(rng.integers(0, w))
        field = np.roll(noise[oy : oy + h, ox : ox + w], shift, axis=1)
        frame = np.clip(frame + field, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@dataclass
class Crop:
    """An image cut from a rendered frame for the Market-format folder."""

    pid: int  # identity, 0 = distractor, -1 = junk
    frame: int
    jpeg: bytes


@dataclass
class CameraOutput:
    """What one camera's render produced, besides its video file."""

    gt: list[tuple]  # (frame0, pid, x, y, w, h, consider, cls, visibility)
    ground: list[tuple]  # (frame0, pid, x_m, y_m) true foot point of every gt row
    crops: list[Crop] = field(default_factory=list)


def composite(frame: np.ndarray, x0: int, y0: int, rgb: np.ndarray, alpha: np.ndarray) -> tuple:
    """Alpha-blend a sprite at (x0, y0); returns the clipped slices (frame and sprite) or None."""
    h, w = alpha.shape
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + w, frame.shape[1]), min(y0 + h, frame.shape[0])
    if fx1 <= fx0 or fy1 <= fy0:
        return None
    sx0, sy0 = fx0 - x0, fy0 - y0
    sl_f = (slice(fy0, fy1), slice(fx0, fx1))
    sl_s = (slice(sy0, sy0 + fy1 - fy0), slice(sx0, sx0 + fx1 - fx0))
    a = alpha[sl_s][..., None]
    region = frame[sl_f].astype(np.float32)
    frame[sl_f] = (region + (rgb[sl_s].astype(np.float32) - region) * a + 0.5).astype(np.uint8)
    return sl_f, sl_s


def draw_shadow(frame: np.ndarray, u: float, v: float, height_px: float) -> None:
    """A soft contact shadow under the feet so people stand on the ground, not float over it."""
    rx, ry = max(2.0, 0.2 * height_px), max(1.0, 0.045 * height_px)
    x0, x1 = int(u - 2 * rx), int(u + 2 * rx) + 1
    y0, y1 = int(v - 2 * ry), int(v + 2 * ry) + 1
    x0c, y0c = max(x0, 0), max(y0, 0)
    x1c, y1c = min(x1, frame.shape[1]), min(y1, frame.shape[0])
    if x1c <= x0c or y1c <= y0c:
        return
    yy, xx = np.mgrid[y0c:y1c, x0c:x1c].astype(np.float32)
    d = ((xx - u) / rx) ** 2 + ((yy - v) / ry) ** 2
    k = 1.0 - 0.45 * np.exp(-d)
    frame[y0c:y1c, x0c:x1c] = (frame[y0c:y1c, x0c:x1c] * k[..., None]).astype(np.uint8)


def cut_crop(frame: np.ndarray, box: np.ndarray, size: tuple[int, int] = (64, 128)) -> bytes:
    """A Market-style crop: the box resized to 64x128, JPEG-encoded (pads with edge pixels)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = frame.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    src = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else frame
    patch = src[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def render_camera(
    *,
    rig: CameraRig,
    cam_number: int,
    people: list[Person],
    width: int,
    height: int,
    fps: float,
    num_frames: int,
    difficulty: float,
    seed: int,
    video_path: str | None,
    crop_every_s: float = 0.8,
    progress: Callable[[int], None] | None = None,
) -> CameraOutput:
    """Render ``num_frames`` frames of one camera; write the video when ``video_path`` is set."""
    cam: PinholeCamera = rig.camera(width, height)
    look = CameraLook.from_rig(rig, difficulty, width)
    rng = np.random.default_rng([seed, cam_number, 7])
    background, props = render_background(cam, seed)
    times = rig.start_offset_s + np.arange(num_frames) / fps
    states = {p.pid: p.states(times) for p in people}
    by_pid = {p.pid: p for p in people}
    noise_bank = make_noise_bank(look, rng, height, width)
    writer = None
    if video_path is not None:
        writer = cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {video_path}")
    out = CameraOutput(gt=[], ground=[])
    crop_stride = max(1, int(round(crop_every_s * fps)))
    next_crop: dict[int, int] = {}
    sun_rel = SUN_AZIMUTH_DEG - rig.yaw_deg
    bearing_cache: dict[int, np.ndarray] = {}
    for pid, st in states.items():
        xy = np.column_stack([st["x"], st["y"]])
        bearing_cache[pid] = cam.bearing_deg(np.nan_to_num(xy))
    for k in range(num_frames):
        frame = background.copy()
        labels = np.full((height, width), -1, np.int32)
        items = []  # (depth, kind, payload)
        for pid, st in states.items():
            if not st["alive"][k]:
                continue
            gx, gy = st["x"][k], st["y"][k]
            person = by_pid[pid]
            h_m = person.appearance.height_m
            uv, depth = cam.project(np.array([[gx, gy, 0.0], [gx, gy, h_m]]))
            if depth[0] < 0.8 or depth[1] < 0.8:
                continue
            hpx = float(uv[0, 1] - uv[1, 1])
            if hpx < 6 or hpx > 3 * height:
                continue
            u, v = float(uv[0, 0]), float(uv[0, 1])
            if u < -hpx or u > width + hpx or v < 0 or v - hpx > height:
                continue
            view = (bearing_cache[pid][k] - st["heading"][k]) % 360.0
            cycle = 1.3 * h_m / 1.75
            phase = (st["walked"][k] / cycle) % 1.0
            stride = 1.0 if st["moving"][k] else 0.0
            items.append((float(depth[0]), "person", (pid, u, v, hpx, view, phase, stride)))
        for sp in props:
            items.append((sp.depth, "prop", sp))
        items.sort(key=lambda it: -it[0])
        for _, kind, payload in items:
            if kind == "person":
                _, u, v, hpx, *_ = payload
                draw_shadow(frame, u, v, hpx)
        boxes: dict[int, tuple] = {}
        person_seen = False
        for idx, (_depth, kind, payload) in enumerate(items):
            if kind == "prop":
                sp: PropSprite = payload
                if not person_seen:
                    continue  # already in the background and nothing drawn over it yet
                sl = composite(frame, sp.x0, sp.y0, sp.rgb, sp.alpha.astype(np.float32) / 255)
                if sl is not None:
                    labels[sl[0]][sp.alpha[sl[1]] > 127] = -2
                continue
            pid, u, v, hpx, view, phase, stride = payload
            person = by_pid[pid]
            sprite = render_figure(
                person.appearance,
                height_px=hpx,
                view_deg=view,
                phase=phase,
                stride=stride,
                light_deg=(sun_rel + 90.0) % 360.0,
                seed=pid,
            )
            x0 = int(round(u - sprite.foot[0]))
            y0 = int(round(v - sprite.foot[1]))
            mask = sprite.alpha > 0.5
            total = int(mask.sum())
            if total == 0:
                continue
            sl = composite(frame, x0, y0, sprite.rgb, sprite.alpha)
            if sl is None:
                continue
            person_seen = True
            labels[sl[0]][mask[sl[1]]] = idx
            ys, xs = np.nonzero(mask)
            box = np.array(
                [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1], np.float64
            )
            boxes[idx] = (pid, box, total)
        # truth: visibility from the label buffer, boxes clipped to the frame
        rows: list[tuple] = []
        for idx, (pid, box, total) in boxes.items():
            cb = clip_boxes(box, (height, width))[0]
            if cb[2] - cb[0] < 1 or cb[3] - cb[1] < 1:
                continue
            bx0, by0, bx1, by1 = (int(c) for c in cb)
            visible = int((labels[by0:by1, bx0:bx1] == idx).sum())
            vis = visible / total
            if vis <= 0:
                continue
            consider = 1 if vis >= CONSIDER_MIN_VISIBILITY else 0
            rows.append(
                (k, pid, cb[0], cb[1], cb[2] - cb[0], cb[3] - cb[1], consider, 1, round(vis, 4))
            )
            out.ground.append((k, pid, float(states[pid]["x"][k]), float(states[pid]["y"][k])))
        frame = apply_look(frame, look, light_drift(times[k], cam_number), rng, noise_bank)
        if writer is not None:
            writer.write(frame)
        out.gt.extend(rows)
        _sample_crops(out, rows, frame, k, rng, crop_stride, next_crop, fps)
        if progress is not None:
            progress(1)
    if writer is not None:
        writer.release()
    return out


def _sample_crops(
    out: CameraOutput,
    rows: list[tuple],
    frame: np.ndarray,
    k: int,
    rng: np.random.Generator,
    stride: int,
    next_crop: dict[int, int],
    fps: float,
) -> None:
    """Market-style crops: identities every ``stride`` frames, plus junk and distractors."""
    h, w = frame.shape[:2]
    good = {r[1]: r for r in rows}
    all_boxes = xywh_to_xyxy(np.array([r[2:6] for r in rows]).reshape(-1, 4))
    for pid, row in sorted(good.items()):
        if k < next_crop.get(pid, 0):
            continue
        x, y, bw, bh, vis = row[2], row[3], row[4], row[5], row[8]
        if bh < CROP_MIN_HEIGHT_PX:
            continue
        box = np.array([x, y, x + bw, y + bh])
        # detector-like jitter: a few percent of the box size
        jit = rng.normal(0, 0.04, 4) * np.array([bw, bh, bw, bh])
        jbox = box + jit
        if vis >= CROP_MIN_VISIBILITY:
            out.crops.append(Crop(pid, k, cut_crop(frame, jbox)))
            next_crop[pid] = k + stride + int(rng.integers(0, stride))
        elif vis >= 0.1 and rng.uniform() < 0.5:
            out.crops.append(Crop(-1, k, cut_crop(frame, jbox)))  # junk: mostly hidden
            next_crop[pid] = k + stride
        if rng.uniform() < 0.08:  # junk: a badly placed box (IoU ~0.3-0.5 with the person)
            dx = rng.choice([-1, 1]) * rng.uniform(0.45, 0.6) * bw
            dy = rng.uniform(-0.25, 0.25) * bh
            out.crops.append(Crop(-1, k, cut_crop(frame, box + np.array([dx, dy, dx, dy]))))
    if rng.uniform() < 0.05 * 10.0 / fps:  # distractor: background where nobody stands
        bh = float(rng.uniform(40, min(200, h * 0.8)))
        bw = bh * 0.42
        x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        cand = np.array([x0, y0, x0 + bw, y0 + bh])
        if len(all_boxes) == 0 or box_iou(cand, all_boxes).max() < 0.05:
            out.crops.append(Crop(0, k, cut_crop(frame, cand)))
