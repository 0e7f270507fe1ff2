"""Detector recall, precision and ms/frame by network input size, on real and rendered footage.

Usage (from the repo root; needs ../shared/data and ../shared/models/yolox_nano.onnx)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/detector_sizes.py WORLD [--every 4] [--world-every 10]

WORLD is a rendered world (``reidtrace synth WORLD --seed 7``: the demo world, 480x360). Scored
per sequence: PETS frames 1-397 inside the annotated area (truth and boxes with the box bottom
below y = 100 at 480x360), TUD-Stadtmitte (640x480, all 179 frames), and the world's cameras
(people at least 25% visible; boxes on less visible people are neither hits nor false). Truth
rows flagged 0 (ignore) are likewise neither. Greedy matching by score at IoU >= 0.5. The time
is the detector's own (letterbox, network, decoding, NMS) on ``--threads`` ONNX threads. The
table in docs/detection.md ("Input size per camera") was made with this script.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from reid.boxes import box_iou
from reid.data.mot import read_mot
from reid.detect import create_detector
from reid.video import probe, read_frames

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
YOLOX = SHARED / "models" / "yolox_nano.onnx"
PETS_MIN_BOTTOM = 100.0  # the annotated area of the PETS truth, at 480x360


def _sequences(world: Path) -> list[tuple[str, Path, Path, float, float, float]]:
    """(name, video, truth, truth scale, min box bottom, min visibility) per sequence."""
    mot = SHARED / "data" / "mot"
    out = [
        (
            "PETS 480x360",
            SHARED / "data" / "pets2009_s2l1_view001_480x360.avi",
            mot / "PETS09-S2L1-first-half" / "gt" / "gt.txt",
            0.625,
            PETS_MIN_BOTTOM,
            0.0,
        ),
        (
            "TUD 640x480",
            mot / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4",
            mot / "TUD-Stadtmitte" / "gt" / "gt.txt",
            1.0,
            0.0,
            0.0,
        ),
    ]
    for cam in sorted(p.parent.parent for p in world.glob("*/gt/gt.txt")):
        out.append((f"world {cam.name}", cam / "video.mp4", cam / "gt" / "gt.txt", 1.0, 0.0, 0.25))
    return out


def _score(dets_xyxy: np.ndarray, scores: np.ndarray, want: np.ndarray, skip: np.ndarray) -> tuple:
    """(hits, false boxes): each box, best score first, takes the free wanted person it overlaps
    most; a box on a skipped person (or already-taken one's ignore twin) is not counted."""
    order = np.argsort(-scores, kind="stable")
    iou_w, iou_s = box_iou(dets_xyxy[order], want), box_iou(dets_xyxy[order], skip)
    free = np.ones(len(want), bool)
    hits = false = 0
    for i in range(len(order)):
        cand = np.flatnonzero(free & (iou_w[i] >= 0.5))
        if len(cand):
            free[cand[np.argmax(iou_w[i, cand])]] = False
            hits += 1
        elif not (len(skip) and iou_s[i].max() >= 0.5):
            false += 1
    return hits, false


def measure(
    name: str, options: dict, seq: tuple, every: int, last: int | None
) -> dict[str, float]:
    """Recall, precision and ms/frame of one detector setting on one sequence."""
    _, video, truth_path, scale, min_bottom, min_vis = seq
    gt = read_mot(truth_path)
    vis = gt.extra.get("visibility", np.ones(len(gt), np.float32))
    det = create_detector(name, **options)
    hits = false = people = 0
    seconds, frames = 0.0, 0
    for k, frame in read_frames(probe(video)):
        if last is not None and k >= last:
            break
        if k % every:
            continue
        t0 = time.perf_counter()
        d = det.detect(frame, k)
        seconds += time.perf_counter() - t0
        frames += 1
        m = gt.frame_idx == k
        boxes = gt.xyxy[m] * scale
        keep = (gt.confidence[m] > 0) & (vis[m] >= min_vis) & (boxes[:, 3] >= min_bottom)
        inside = d.xyxy[:, 3] >= min_bottom
        h, f = _score(d.xyxy[inside], d.confidence[inside], boxes[keep], boxes[~keep])
        hits, false, people = hits + h, false + f, people + int(keep.sum())
    return {
        "recall": hits / max(people, 1),
        "precision": hits / max(hits + false, 1),
        "ms": 1000 * seconds / max(frames, 1),
        "people": people,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("world", type=Path)
    ap.add_argument("--every", type=int, default=4, help="score every Nth frame of PETS, TUD")
    ap.add_argument("--world-every", type=int, default=10, help="every Nth frame of the world")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if not YOLOX.is_file():
        raise SystemExit(f"{YOLOX} not found: this benchmark compares YOLOX-Nano input sizes")
    yolox = {"path": str(YOLOX), "threads": args.threads}
    settings = {
        "PETS 480x360": [(288, 384), (384, 480), (416, 416), (480, 640)],
        "TUD 640x480": [(352, 480), (384, 512), (480, 640)],
        "world": [(288, 384), (384, 480), (416, 416)],
    }
    print("| sequence | detector | input (h x w) | recall | precision | ms/frame |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for seq in _sequences(args.world):
        sizes = settings["world" if seq[0].startswith("world") else seq[0]]
        last = 397 if seq[0].startswith("PETS") else None
        runs = [("nanodet", {"threads": args.threads}, "416 x 416")]
        runs += [("yolox", {**yolox, "input_size": s}, f"{s[0]} x {s[1]}") for s in sizes]
        for name, options, size in runs:
            every = args.world_every if seq[0].startswith("world") else args.every
            r = measure(name, options, seq, every, last)
            label = "NanoDet INT8" if name == "nanodet" else "YOLOX-Nano"
            print(
                f"| {seq[0]} | {label} | {size} | {r['recall']:.3f} | {r['precision']:.3f} | "
                f"{r['ms']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
