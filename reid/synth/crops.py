"""The fast path of ``reidtrace synth --crops-only``: Market-format crops without video.

Training a ReID model wants hundreds of identities seen by several cameras, far more than a few
minutes of simulated footage hold. Here each identity is placed straight into a few of the
world's camera views (same backgrounds, same camera looks, same figure renderer as the videos),
at a random spot, distance, heading and walking phase, sometimes partly hidden by a passer-by,
and cut out with detector-like jitter. Each identity is seeded on its own, so the output does
not depend on the number of worker processes.

``variety`` (``none`` by default, byte-identical to the renderer before the option existed)
switches to domain-randomised crops (``reid.synth.variety``): textured clothing, a random
camera response per camera and recording sequence, varied backgrounds and crop sizes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from reid.data.market import market_name
from reid.errors import ReidTraceError
from reid.geometry import apply_homography
from reid.synth.appearance import Appearance, sample_appearances
from reid.synth.figure import render_figure
from reid.synth.output import (
    pick_query,
    split_identities,
    staged_output,
    write_identities,
    write_json,
)
from reid.synth.render import (
    CameraLook,
    apply_look,
    composite,
    cut_crop,
    draw_shadow,
    make_noise_bank,
)
from reid.synth.site import MAX_CAMERAS, RIGS, render_background
from reid.synth.variety import (
    SEQUENCES_PER_CAMERA,
    VARIETY_LEVELS,
    CameraResponse,
    apply_response,
    cast_shadow,
    encode_crop,
    sample_crop_size,
    sample_response,
    sample_style,
    variety_strength,
    vary_background,
)

MIN_HEIGHT_PX, MAX_HEIGHT_PX = 40.0, 260.0


@dataclass(frozen=True)
class CropsConfig:
    seed: int = 0
    cameras: int = 6
    identities: int = 750
    images_per_camera: int = 8
    difficulty: float = 0.5
    hard_negative_frac: float = 0.3
    test_frac: float = 0.5
    width: int = 480
    height: int = 360
    variety: str = "none"  # a VARIETY_LEVELS name: domain-randomised crops when not "none"

    def validate(self) -> CropsConfig:
        if not 2 <= self.cameras <= MAX_CAMERAS:
            raise ReidTraceError(
                f"crops need 2..{MAX_CAMERAS} cameras (each identity is seen by >= 2), "
                f"got {self.cameras}",
                hint="try --cameras 6",
            )
        if self.identities < 2:
            raise ReidTraceError(f"identities must be >= 2, got {self.identities}", hint="try 750")
        if not 1 <= self.images_per_camera <= 200:
            raise ReidTraceError(
                f"images per camera must be 1..200, got {self.images_per_camera}", hint="try 8"
            )
        for name in ("difficulty", "hard_negative_frac"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ReidTraceError(f"{name} must be in [0, 1], got {v}", hint="try 0.5")
        if not 0 < self.test_frac < 1:
            raise ReidTraceError(f"test_frac must be in (0, 1), got {self.test_frac}", hint="0.5")
        variety_strength(self.variety)
        return self

    def summary(self) -> dict:
        """The config as written to ``world.json``; ``variety`` only when not the default, so
        a default crops folder stays byte-identical to one rendered before the option."""
        d = asdict(self)
        if self.variety == "none":
            del d["variety"]
        return d


@cache
def _appearances(seed: int, n: int, hard: float, difficulty: float) -> list[Appearance]:
    rng = np.random.default_rng([seed, 1])
    return sample_appearances(n, rng, hard_negative_frac=hard, difficulty=difficulty)


@cache
def _extras(seed: int) -> list[Appearance]:
    """Passers-by that partly hide the identity in some crops (never identities themselves)."""
    return sample_appearances(40, np.random.default_rng([seed, 99]), hard_negative_frac=0.0)


@cache
def _camera(seed: int, c: int, width: int, height: int, difficulty: float) -> tuple:
    rig = RIGS[c]
    cam = rig.camera(width, height)
    bg, _ = render_background(cam, seed)
    look = CameraLook.from_rig(rig, difficulty, width)
    noise = make_noise_bank(look, np.random.default_rng([seed, c, 5]), height, width)
    return rig, cam, bg, look, noise


def _place(cam, rng: np.random.Generator, height_m: float) -> tuple | None:
    """A random visible standing spot: (u, v, height_px) of a person of ``height_m``."""
    w, h = cam.width, cam.height
    for _ in range(60):
        u, v = rng.uniform(0.08 * w, 0.92 * w), rng.uniform(0.3 * h, 1.02 * h)
        g = apply_homography(cam.image_to_ground, np.array([[u, v]]))[0]
        if not np.isfinite(g).all():
            continue
        uv, depth = cam.project(np.array([[g[0], g[1], 0.0], [g[0], g[1], height_m]]))
        if depth.min() < 1.0:
            continue
        hpx = float(uv[0, 1] - uv[1, 1])
        if MIN_HEIGHT_PX <= hpx <= MAX_HEIGHT_PX and uv[1, 1] > 2:
            return float(uv[0, 0]), float(uv[0, 1]), hpx, g
    return None


def _render_identity(args: tuple) -> list[tuple[int, int, int, int, bytes]]:
    """All crops of one identity: (pid, camera number, sequence, pseudo frame, jpeg)."""
    cfg, pid = args
    import cv2

    cv2.setNumThreads(1)
    if cfg.variety != "none":
        return _render_identity_varied(cfg, pid)
    apps = _appearances(cfg.seed, cfg.identities, cfg.hard_negative_frac, cfg.difficulty)
    app = apps[pid - 1]
    rng = np.random.default_rng([cfg.seed, 10, pid])
    n_cams = int(rng.integers(2, cfg.cameras + 1))
    cams = sorted(int(c) for c in rng.choice(cfg.cameras, n_cams, replace=False))
    out = []
    for c in cams:
        rig, cam, bg, look, noise = _camera(cfg.seed, c, cfg.width, cfg.height, cfg.difficulty)
        lo = max(1, cfg.images_per_camera // 2)
        n_img = int(rng.integers(lo, cfg.images_per_camera + lo // 2 + 1))
        heading = float(rng.uniform(0, 360))  # one walk per camera: views change little within it
        for k in range(n_img):
            spot = _place(cam, rng, app.height_m)
            if spot is None:
                continue
            u, v, hpx, g = spot
            bearing = float(cam.bearing_deg(g[None])[0])
            view = (bearing - heading + rng.normal(0, 20)) % 360
            frame = bg.copy()
            walking = rng.uniform() < 0.85
            sprite = render_figure(
                app,
                height_px=hpx,
                view_deg=view,
                phase=float(rng.uniform()),
                stride=1.0 if walking else 0.0,
                light_deg=(35.0 - rig.yaw_deg + 90.0) % 360,
                seed=pid,
            )
            x0, y0 = int(round(u - sprite.foot[0])), int(round(v - sprite.foot[1]))
            composite(frame, x0, y0, sprite.rgb, sprite.alpha)
            ys, xs = np.nonzero(sprite.alpha > 0.5)
            box = np.array(
                [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1], float
            )
            if rng.uniform() < 0.15 + 0.15 * cfg.difficulty:  # a passer-by partly in front
                extra = _extras(cfg.seed)[int(rng.integers(40))]
                side = rng.choice([-1, 1])
                ex = u + side * rng.uniform(0.3, 0.55) * hpx * 0.45
                es = render_figure(
                    extra,
                    height_px=hpx * rng.uniform(0.95, 1.1),
                    view_deg=float(rng.uniform(0, 360)),
                    phase=float(rng.uniform()),
                    seed=1000 + pid,
                )
                composite(
                    frame,
                    int(round(ex - es.foot[0])),
                    int(round(v + rng.uniform(2, 8) - es.foot[1])),
                    es.rgb,
                    es.alpha,
                )
            margin = int(0.4 * hpx) + 8
            rx0, ry0 = max(0, int(box[0]) - margin), max(0, int(box[1]) - margin)
            rx1 = min(cam.width, int(box[2]) + margin)
            ry1 = min(cam.height, int(box[3]) + margin)
            drift = 1.0 + 0.06 * np.sin(rng.uniform(0, 2 * np.pi))
            frame[ry0:ry1, rx0:rx1] = apply_look(frame[ry0:ry1, rx0:rx1], look, drift, rng, noise)
            bw, bh = box[2] - box[0], box[3] - box[1]
            jbox = box + rng.normal(0, 0.04, 4) * np.array([bw, bh, bw, bh])
            fno = pid * 100 + k  # a pseudo frame number, unique per identity and camera
            out.append((pid, c + 1, 1, fno, cut_crop(frame, jbox)))
            if rng.uniform() < 0.06:  # junk: a badly placed box (half a person)
                dx = rng.choice([-1, 1]) * rng.uniform(0.45, 0.6) * bw
                shifted = box + np.array([dx, 0, dx, 0])
                out.append((-1, c + 1, 1, fno, cut_crop(frame, shifted)))
            if rng.uniform() < 0.06:  # distractor: empty background of the same size
                cx = rng.uniform(0, cam.width - bw)
                dbox = np.array([cx, box[1], cx + bw, box[3]])
                if abs(cx - box[0]) > 1.5 * bw:
                    out.append((0, c + 1, 1, fno, cut_crop(bg, dbox)))
    return out


@cache
def _responses(seed: int, c: int, variety: str) -> tuple[CameraResponse, ...]:
    """Camera ``c``'s response in each recording sequence: one random camera, drifting."""
    strength = VARIETY_LEVELS[variety]
    base = sample_response(np.random.default_rng([seed, c, 30]), strength)
    return tuple(
        base.jitter(np.random.default_rng([seed, c, 31, j]), strength)
        for j in range(SEQUENCES_PER_CAMERA)
    )


def _root(apps: list[Appearance], i: int) -> int:
    """The identity a twin copies (twins share their clothing style, so they stay hard)."""
    while apps[i].twin_of >= 0:
        i = apps[i].twin_of
    return i


def _render_identity_varied(cfg: CropsConfig, pid: int) -> list[tuple[int, int, int, int, bytes]]:
    """Domain-randomised crops of one identity (``variety`` != "none"); see the module doc.

    Same placement and occlusion as the default path, plus: the identity's clothing style,
    the camera's response in one of its recording sequences (the Market ``sNN``), a varied
    background and cast shadows, more standing people and wider views, and the crop's size.
    """
    s = variety_strength(cfg.variety)
    apps = _appearances(cfg.seed, cfg.identities, cfg.hard_negative_frac, cfg.difficulty)
    app = apps[pid - 1]
    root = _root(apps, pid - 1)
    style = sample_style(np.random.default_rng([cfg.seed, 20, root + 1]), apps[root], s)
    rng = np.random.default_rng([cfg.seed, 21, pid])
    n_cams = int(rng.integers(2, cfg.cameras + 1))
    cams = sorted(int(c) for c in rng.choice(cfg.cameras, n_cams, replace=False))
    out = []
    for c in cams:
        _rig, cam, bg, _look, _noise = _camera(cfg.seed, c, cfg.width, cfg.height, cfg.difficulty)
        seq = int(rng.integers(1, SEQUENCES_PER_CAMERA + 1))
        resp = _responses(cfg.seed, c, cfg.variety)[seq - 1]
        lo = max(1, cfg.images_per_camera // 2)
        n_img = int(rng.integers(lo, cfg.images_per_camera + lo // 2 + 1))
        heading = float(rng.uniform(0, 360))
        p_walk = 0.85 - 0.25 * s
        for k in range(n_img):
            spot = _place(cam, rng, app.height_m)
            if spot is None:
                continue
            u, v, hpx, g = spot
            bearing = float(cam.bearing_deg(g[None])[0])
            view = (bearing - heading + rng.normal(0, 20 + 25 * s)) % 360
            sprite = render_figure(
                app,
                height_px=hpx,
                view_deg=view,
                phase=float(rng.uniform()),
                stride=float(rng.uniform(0.5, 1.0)) if rng.uniform() < p_walk else 0.0,
                light_deg=float((resp.light_deg + rng.normal(0, 15)) % 360),
                seed=pid,
                style=style,
            )
            x0, y0 = int(round(u - sprite.foot[0])), int(round(v - sprite.foot[1]))
            ys, xs = np.nonzero(sprite.alpha > 0.5)
            box = np.array(
                [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1], float
            )
            margin = int(0.4 * hpx) + 8
            rx0, ry0 = max(0, int(box[0]) - margin), max(0, int(box[1]) - margin)
            rx1 = min(cam.width, int(box[2]) + margin)
            ry1 = min(cam.height, int(box[3]) + margin)
            frame = bg.copy()
            region = frame[ry0:ry1, rx0:rx1]
            vary_background(region, rng, s, hpx)
            draw_shadow(frame, u, v, hpx)
            composite(frame, x0, y0, sprite.rgb, sprite.alpha)
            if rng.uniform() < 0.15 + 0.15 * cfg.difficulty:  # a passer-by partly in front
                extra = _extras(cfg.seed)[int(rng.integers(40))]
                ex = u + rng.choice([-1, 1]) * rng.uniform(0.3, 0.55) * hpx * 0.45
                es = render_figure(
                    extra,
                    height_px=hpx * rng.uniform(0.95, 1.1),
                    view_deg=float(rng.uniform(0, 360)),
                    phase=float(rng.uniform()),
                    seed=1000 + pid,
                )
                ey = v + rng.uniform(2, 8)
                composite(frame, int(round(ex - es.foot[0])), int(round(ey - es.foot[1])),
                          es.rgb, es.alpha)  # fmt: skip
            if rng.uniform() < resp.shadow:
                cast_shadow(region, rng)
            frame[ry0:ry1, rx0:rx1] = apply_response(region, resp, rng)
            bw, bh = box[2] - box[0], box[3] - box[1]
            jbox = box + rng.normal(0, 0.04, 4) * np.array([bw, bh, bw, bh])
            size = sample_crop_size(rng, s)
            fno = pid * 100 + k
            out.append((pid, c + 1, seq, fno, encode_crop(frame, jbox, size, rng, s)))
            if rng.uniform() < 0.06:  # junk: a badly placed box (half a person)
                dx = rng.choice([-1, 1]) * rng.uniform(0.45, 0.6) * bw
                shifted = box + np.array([dx, 0, dx, 0])
                out.append((-1, c + 1, seq, fno, encode_crop(frame, shifted, size, rng, s)))
            if rng.uniform() < 0.06:  # distractor: varied background of the same size
                cx = float(rng.uniform(0, cam.width - bw))
                if abs(cx - box[0]) > 1.5 * bw:
                    dbox = np.array([cx, box[1], cx + bw, box[3]])
                    d0 = max(0, int(cx - 0.5 * bw) - 4)
                    d1 = min(cam.width, int(cx + 1.5 * bw) + 4)
                    empty = bg[ry0:ry1, d0:d1].copy()
                    vary_background(empty, rng, s, hpx)
                    dframe = bg.copy()
                    dframe[ry0:ry1, d0:d1] = apply_response(empty, resp, rng)
                    out.append((0, c + 1, seq, fno, encode_crop(dframe, dbox, size, rng, s)))
    return out


def generate_crops(
    out: str | Path,
    cfg: CropsConfig,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Write a Market-1501-format folder of synthetic crops into ``out/market``."""
    cfg.validate()
    with staged_output(out, overwrite) as staging:
        return _generate(staging, cfg, workers, progress)


def _generate(root: Path, cfg: CropsConfig, workers: int | None, progress: Callable | None) -> dict:
    pids = list(range(1, cfg.identities + 1))
    split = split_identities(cfg.seed, cfg.identities, cfg.test_frac)
    folders = {k: root / "market" / k for k in ("bounding_box_train", "bounding_box_test", "query")}
    for d in folders.values():
        d.mkdir(parents=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(pids)))
    results: list[list[tuple]] = []
    tasks = [(cfg, p) for p in pids]
    if workers == 1:
        for i, t in enumerate(tasks):
            results.append(_render_identity(t))
            if progress:
                progress("crops", i + 1, len(tasks))
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for i, r in enumerate(pool.map(_render_identity, tasks, chunksize=4)):
                results.append(r)
                if progress:
                    progress("crops", i + 1, len(tasks))
    counts = {"bounding_box_train": 0, "bounding_box_test": 0, "query": 0}
    qrng = np.random.default_rng([cfg.seed, 4])
    distractors = junk = 0
    cams_of: dict[int, list[str]] = {}
    for pid, crops in zip(pids, results, strict=True):
        cams_of[pid] = sorted({RIGS[c - 1].name for p, c, *_ in crops if p == pid})
        by_cam: dict[int, list[tuple]] = {}
        for crop in crops:
            pid, cam, seq, fno, jpeg = crop
            if pid <= 0:
                name = market_name(pid, cam, seq, fno, 2 if pid == -1 else 3)
                (folders["bounding_box_test"] / name).write_bytes(jpeg)
                counts["bounding_box_test"] += 1
                distractors += pid == 0
                junk += pid == -1
            else:
                by_cam.setdefault(cam, []).append(crop)
        for _cam, items in sorted(by_cam.items()):
            q = pick_query(items, len(by_cam), qrng)
            for i, (pid, cam_no, seq, fno, jpeg) in enumerate(items):
                if split[pid] == "train":
                    folder = "bounding_box_train"
                else:
                    folder = "query" if i == q else "bounding_box_test"
                (folders[folder] / market_name(pid, cam_no, seq, fno, 1)).write_bytes(jpeg)
                counts[folder] += 1
    apps = _appearances(cfg.seed, cfg.identities, cfg.hard_negative_frac, cfg.difficulty)
    write_identities(
        root / "identities.csv",
        ((p, apps[p - 1], "crops", -1, split[p], " ".join(cams_of[p])) for p in pids),
    )
    summary = {
        "config": cfg.summary(),
        "kind": "crops",
        "identities": cfg.identities,
        "identities_seen": cfg.identities,
        "cameras": [RIGS[c].name for c in range(cfg.cameras)],
        "market": {
            "train_images": counts["bounding_box_train"],
            "train_ids": sum(1 for p in pids if split[p] == "train"),
            "query_images": counts["query"],
            "gallery_images": counts["bounding_box_test"],
            "test_ids": sum(1 for p in pids if split[p] == "test"),
            "distractors": int(distractors),
            "junk": int(junk),
        },
    }
    write_json(root / "world.json", summary)
    return summary
