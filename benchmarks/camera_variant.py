"""One camera of the demo world re-rendered with one thing changed, and the detector's recall.

Usage::

    python benchmarks/camera_variant.py cam4 [--set KEY=VALUE ...] [--no-lamps] [--no-grout]
        [--frames 1200] [--every 10] [--seed 7] [--detector nanodet]

``--set`` changes a field of the camera's ``CameraRig`` (VALUE as JSON: ``noise=0.5``,
``pitch_deg=18``, ``position=[30,60,4.5]``, ``cast=[1,1,1]``); ``--no-lamps`` removes the lamp
posts from the site and ``--no-grout`` the paving joints. The camera is rendered (with the
world's people, look and video codec) into a temporary file, the detector runs on every
``--every``-th frame, and recall of people at least 25% visible (IoU >= 0.5) is printed overall
and per 20-px height band. This is the probe behind docs/detectors.md, session 4. It changes
the world only inside this process: it asks what the detector reacts to, it does not tune the
world.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from reid.boxes import box_iou, xywh_to_xyxy
from reid.detect import create_detector
from reid.synth import site
from reid.synth.render import render_camera
from reid.synth.world import WorldConfig, build_people
from reid.video import probe, read_frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("camera", help="cam1 .. cam8")
    ap.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--no-lamps", action="store_true")
    ap.add_argument("--no-grout", action="store_true")
    ap.add_argument("--frames", type=int, default=1200)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--detector", default="nanodet")
    args = ap.parse_args()
    names = [r.name for r in site.RIGS]
    if args.camera not in names:
        raise SystemExit(f"unknown camera {args.camera!r}: one of {names}")
    if args.frames < 1 or args.every < 1:
        raise SystemExit("--frames and --every must be >= 1")
    cam_i = names.index(args.camera)
    fields = {f.name for f in dataclasses.fields(site.CameraRig)}
    changes = {}
    for pair in args.changes:
        key, sep, raw = pair.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"bad --set {pair!r}: KEY one of {sorted(fields)}")
        value = json.loads(raw)
        changes[key] = tuple(value) if isinstance(value, list) else value
    if args.no_lamps:
        site.PROPS[:] = [p for p in site.PROPS if p.kind != "lamp"]
    if args.no_grout:
        site.GROUT = 1.0
        site.ground_texture.cache_clear()
    cfg = WorldConfig(seed=args.seed).validate()
    rig = dataclasses.replace(site.RIGS[cam_i], **changes)
    detector = create_detector(args.detector)
    with tempfile.TemporaryDirectory(prefix="reidtrace-camera-") as tmp:
        video = str(Path(tmp) / "video.mp4")
        out = render_camera(
            rig=rig,
            cam_number=cam_i + 1,
            people=build_people(cfg),
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            num_frames=args.frames,
            difficulty=cfg.difficulty,
            seed=cfg.seed,
            video_path=video,
        )
        gt = np.array(out.gt, dtype=float).reshape(-1, 9)  # frame, id, x, y, w, h, consider, ...
        hits, bands = [], {}
        for k, frame in read_frames(probe(video)):
            if k % args.every:
                continue
            g = gt[(gt[:, 0] == k) & (gt[:, 6] == 1)]
            if not len(g):
                continue
            boxes = xywh_to_xyxy(g[:, 2:6])
            d = detector.detect(frame, k)
            found = np.zeros(len(g), bool)
            if len(d):
                found = (box_iou(d.xyxy, boxes) >= 0.5).any(axis=0)
            hits += found.tolist()
            for height, f in zip(g[:, 5], found, strict=True):
                bands.setdefault(int(height // 20 * 20), []).append(bool(f))
    if not hits:
        raise SystemExit("nobody was visible in the scored frames: render more --frames")
    by_band = {f"{b}-{b + 20}px": f"{sum(v)}/{len(v)}" for b, v in sorted(bands.items())}
    print(json.dumps({"camera": args.camera, "changes": changes, "no_lamps": args.no_lamps,
                      "no_grout": args.no_grout, "recall": round(float(np.mean(hits)), 3),
                      "people": len(hits), "by_height": by_band}))  # fmt: skip


if __name__ == "__main__":
    main()
