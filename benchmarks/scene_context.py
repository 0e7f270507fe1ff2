"""Is it the rendered people or the rendered scenes that a COCO detector misses?

Usage::

    python benchmarks/scene_context.py [--detector nanodet] [--n 40]

Pastes single people, one per frame, where a person of that height stands in each camera's
view (on the camera's optical axis, shifted sideways), applies the camera's look (exposure,
blur, noise, JPEG), runs the detector and reports the share found (IoU >= 0.5 at the
detector's threshold). Three pairings:

- rendered people in our scene (what the world does today);
- real PETS people (NanoDet's own confident boxes, cut with an elliptical mask) in our scene;
- rendered people in a real PETS frame (the scene swapped, the look kept).

If real people are missed in our scenes about as often as rendered ones, while rendered people
are found in a real frame, the scenes are what to fix. Needs ../shared/data's PETS clip.
Written by hand: it is a probe of this project's renderer, not a general tool.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np

from reid.boxes import box_iou
from reid.detect import create_detector
from reid.synth.appearance import sample_appearances
from reid.synth.figure import Sprite, render_figure
from reid.synth.render import CameraLook, apply_look, composite, draw_shadow, make_noise_bank
from reid.synth.site import RIGS, render_background

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets2009_s2l1_view001_480x360.avi"
W, H = 480, 360


def pets_people(n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Confident NanoDet-float boxes of PETS people >= 60 px (cut out), and the first frame."""
    det = create_detector("nanodet-float")
    cap = cv2.VideoCapture(str(PETS))
    ok, first = cap.read()
    if not ok:
        raise SystemExit(f"cannot read {PETS}: this probe needs the PETS clip")
    crops, k = [], 0
    while len(crops) < n:
        ok, frame = cap.read()
        if not ok:
            break
        k += 1
        if k % 23:
            continue
        d = det.detect(frame, k)
        for (x1, y1, x2, y2), c in zip(d.xyxy.astype(int), d.confidence, strict=True):
            if y2 - y1 > 60 and c > 0.5:
                crops.append(frame[y1:y2, x1:x2].copy())
    return crops[:n], first


def pets_sprite(crop: np.ndarray, h: int) -> Sprite:
    w = max(1, round(crop.shape[1] * h / crop.shape[0]))
    rgb = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h // 2), (int(w * 0.42), h // 2), 0, 0, 360, 1.0, -1)
    return Sprite(rgb, alpha, (w / 2, h))


def foot_row(cam_i: int, h: float) -> float | None:
    """Image row of the feet of a 1.72 m person who appears ``h`` px tall on the optical axis."""
    rig = RIGS[cam_i]
    cam = rig.camera(W, H)
    yaw, (px, py) = math.radians(rig.yaw_deg), rig.position[:2]
    lo, hi, v = 1.0, 300.0, None
    for _ in range(40):
        d = (lo + hi) / 2
        gx, gy = px + d * math.cos(yaw), py + d * math.sin(yaw)
        uv, _ = cam.project(np.array([[gx, gy, 0.0], [gx, gy, 1.72]]))
        v, height = float(uv[0, 1]), float(uv[0, 1] - uv[1, 1])
        lo, hi = (d, hi) if height > h else (lo, d)
    return v if v is not None and 0 < v < H else None


def found_share(det, background, look, sprites, v: float) -> float:
    rng = np.random.default_rng(0)
    bank = make_noise_bank(look, rng, H, W)
    hits = 0
    for i, sp in enumerate(sprites):
        frame = background.copy()
        u = W / 2 + (i % 5 - 2) * 60
        draw_shadow(frame, u, v, sp.alpha.shape[0])
        x0, y0 = round(u - sp.foot[0]), round(v - sp.foot[1])
        composite(frame, x0, y0, sp.rgb, sp.alpha)
        frame = apply_look(frame, look, 1.0, rng, bank)
        ys, xs = np.nonzero(sp.alpha > 0.5)
        box = np.array([[x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1]])
        d = det.detect(frame, 0)
        hits += int(len(d) > 0 and box_iou(d.xyxy, box.astype(np.float32)).max() >= 0.5)
    return hits / max(len(sprites), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", default="nanodet")
    ap.add_argument("--n", type=int, default=40, help="people per cell")
    args = ap.parse_args()
    det = create_detector(args.detector)
    apps = sample_appearances(args.n, np.random.default_rng(5))
    real, pets_frame = pets_people(args.n)
    print(f"{'camera':7s} {'height':>6s}  rendered/our scene  real/our scene  rendered/PETS frame")
    for cam_i in range(4):
        rig = RIGS[cam_i]
        scene, _ = render_background(rig.camera(W, H), 0)
        look = CameraLook.from_rig(rig, 0.5, W)
        for h in (45, 70, 100):
            v = foot_row(cam_i, h)
            if v is None:
                continue
            ours = [
                render_figure(a, height_px=h, view_deg=90 * (i % 4), phase=(i * 0.37) % 1, seed=i)
                for i, a in enumerate(apps)
            ]
            theirs = [pets_sprite(c, h) for c in real]
            row = [found_share(det, bg, look, sp, v) for bg, sp in
                   ((scene, ours), (scene, theirs), (pets_frame, ours))]  # fmt: skip
            print(f"{rig.name:7s} {h:4d}px  " + "  ".join(f"{x:18.2f}" for x in row), flush=True)


if __name__ == "__main__":
    main()
