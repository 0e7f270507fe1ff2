"""Detector recall and precision on a rendered world, per camera and by person height.

Usage::

    python benchmarks/detector_recall.py WORLD [--detector nanodet] [--every 10] [--png OUT.png]

A person counts when at least 25% visible (the same rule as ``evaluate-tracking``); detections
matched to less visible people are neither hits nor false boxes. Matching is greedy by score,
IoU >= 0.5, one detection per person. ``--png`` draws one frame per camera (green = found,
red = missed, orange = false box, grey = under 25% visible) so the numbers can be looked at.
Written by hand because it is a few lines on top of our own readers; motmetrics scores tracks,
not single-frame detection.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from reid.boxes import box_iou
from reid.data.mot import read_mot
from reid.detect import create_detector
from reid.video import probe, read_frames

MIN_VIS = 0.25
BUCKETS = ((0, 50), (50, 100), (100, 10_000))
VIS_BUCKETS = ((MIN_VIS, 0.75), (0.75, 1.01))


def score_camera(cam_dir: Path, detector_name: str, every: int, draw: bool):
    gt = read_mot(cam_dir / "gt" / "gt.txt")
    vis = gt.extra.get("visibility", np.ones(len(gt.xyxy), np.float32))
    det = create_detector(detector_name)
    info = probe(cam_dir / "video.mp4")
    hits = {b: [0, 0] for b in BUCKETS}
    by_vis = {v: [0, 0] for v in VIS_BUCKETS}
    tp = fp = 0
    picture = None
    best_n = -1
    for k, frame in read_frames(info):
        if k % every:
            continue
        d = det.detect(frame, k)
        m = gt.frame_idx == k
        g, gv = gt.xyxy[m], vis[m]
        order = np.argsort(-d.confidence)
        boxes = d.xyxy[order]
        iou = box_iou(boxes, g)
        taken = np.zeros(len(g), bool)
        det_state = []
        for i in range(len(boxes)):
            cand = np.where(~taken & (iou[i] >= 0.5))[0]
            if len(cand):
                j = cand[np.argmax(iou[i, cand])]
                taken[j] = True
                det_state.append("hit" if gv[j] >= MIN_VIS else "ignore")
            else:
                # overlapping a hardly visible person is not a false box
                low = (iou[i] >= 0.5) & (gv < MIN_VIS)
                det_state.append("ignore" if low.any() else "false")
        tp += det_state.count("hit")
        fp += det_state.count("false")
        for j in range(len(g)):
            if gv[j] < MIN_VIS:
                continue
            h = g[j, 3] - g[j, 1]
            for v in VIS_BUCKETS:
                if v[0] <= gv[j] < v[1]:
                    by_vis[v][0] += int(taken[j])
                    by_vis[v][1] += 1
            for b in BUCKETS:
                if b[0] <= h < b[1]:
                    hits[b][0] += int(taken[j])
                    hits[b][1] += 1
        n_vis = int((gv >= MIN_VIS).sum())
        if draw and n_vis > best_n:
            best_n = n_vis
            img = frame.copy()
            for j in range(len(g)):
                col = (
                    (160, 160, 160) if gv[j] < MIN_VIS else (0, 200, 0) if taken[j] else (0, 0, 255)
                )
                x1, y1, x2, y2 = g[j].astype(int)
                cv2.rectangle(img, (x1, y1), (x2, y2), col, 1)
            for i, s in enumerate(det_state):
                if s == "false":
                    x1, y1, x2, y2 = boxes[i].astype(int)
                    cv2.rectangle(img, (x1, y1), (x2, y2), (0, 140, 255), 1)
            picture = img
    total = sum(v[1] for v in hits.values())
    found = sum(v[0] for v in hits.values())
    return {
        "recall": round(found / max(total, 1), 3),
        "precision": round(tp / max(tp + fp, 1), 3),
        "people": total,
        "by_height": {f"{a}-{b}": f"{v[0]}/{v[1]}" for (a, b), v in hits.items()},
        "by_visibility": {f"{a}-{b}": f"{v[0]}/{v[1]}" for (a, b), v in by_vis.items()},
    }, picture


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("world", type=Path)
    ap.add_argument("--detector", default="nanodet")
    ap.add_argument("--every", type=int, default=10, help="score every Nth frame")
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args()
    cams = sorted(p.parent.parent for p in args.world.glob("*/gt/gt.txt"))
    if not cams:
        raise SystemExit(f"{args.world} holds no CAMERA/gt/gt.txt: pass a `reidtrace synth` world")
    out, pics = {}, []
    for cam in cams:
        out[cam.name], pic = score_camera(cam, args.detector, args.every, args.png is not None)
        if pic is not None:
            pics.append(pic)
    print(json.dumps(out, indent=1))
    if args.png and pics:
        w = max(p.shape[1] for p in pics)
        pics = [cv2.copyMakeBorder(p, 0, 0, 0, w - p.shape[1], cv2.BORDER_CONSTANT) for p in pics]
        rows = [
            np.hstack(pics[i : i + 2])
            if i + 1 < len(pics)
            else np.hstack([pics[i], np.zeros_like(pics[i])])
            for i in range(0, len(pics), 2)
        ]
        cv2.imwrite(str(args.png), np.vstack(rows))


if __name__ == "__main__":
    main()
