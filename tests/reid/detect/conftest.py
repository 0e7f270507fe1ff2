"""Shared fixtures: a tiny rendered world, the real PETS clip (when present), frame readers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.boxes import box_iou
from reid.data.mot import read_mot
from reid.detections import Detections
from reid.protocols import Detector

REPO = Path(__file__).resolve().parents[3]
PETS = REPO / ".." / "shared" / "data" / "pets2009_s2l1_view001_480x360.avi"

# PETS 2009 S2.L1 view 001 (480x360): every person visible in 5 frames, checked by eye
# (x1, y1, x2, y2); 33 people, 26-95 px tall (most 40-60). Boxes are NanoDet-float's own where
# it found the person at any score, drawn by hand otherwise, so IoU favours NanoDet a little.
# Measured with the defaults: recall 0.85, precision 0.97 (float and INT8).
PETS_PEOPLE = {
    50: [(315, 135, 338, 191), (419, 162, 444, 231), (345, 136, 367, 189), (233, 112, 249, 161),
         (273, 112, 287, 155), (256, 120, 277, 162)],
    170: [(322, 130, 346, 185), (274, 129, 303, 188), (176, 105, 192, 149), (396, 75, 412, 120),
          (420, 64, 434, 99), (261, 125, 284, 176), (430, 64, 445, 98), (2, 64, 12, 90)],
    290: [(221, 136, 243, 195), (161, 105, 180, 156), (189, 100, 203, 142), (90, 95, 108, 141),
          (370, 94, 386, 137), (387, 98, 402, 137)],
    530: [(218, 250, 248, 345), (118, 108, 136, 153), (389, 121, 411, 175), (394, 169, 416, 230),
          (287, 121, 306, 178), (232, 243, 258, 330)],
    770: [(180, 153, 204, 213), (317, 144, 338, 205), (165, 111, 188, 161), (388, 124, 405, 183),
          (426, 80, 439, 112), (248, 122, 262, 166), (177, 110, 192, 145)],
}  # fmt: skip


def match_boxes(dets: Detections, truth: np.ndarray, ignore: np.ndarray) -> tuple[int, int]:
    """Greedy by score at IoU 0.5: (true positives, false positives); hits on ``ignore`` are
    neither (people the truth does not ask for, e.g. mostly hidden)."""
    order = np.argsort(-dets.confidence)
    used = np.zeros(len(truth), bool)
    tp = fp = 0
    iou_t = box_iou(dets.xyxy, truth)
    iou_i = box_iou(dets.xyxy, ignore)
    for i in order:
        free = np.flatnonzero(~used & (iou_t[i] >= 0.5))
        if len(free):
            used[free[np.argmax(iou_t[i, free])]] = True
            tp += 1
        elif not (iou_i.shape[1] and iou_i[i].max() >= 0.5):
            fp += 1
    return tp, fp


def pets_counts(det: Detector, pets_video: Path) -> tuple[int, int, int]:
    """(people found, false boxes, people) on the hand-checked PETS frames."""
    tp = fp = total = 0
    for idx, frame in read_frames(pets_video, set(PETS_PEOPLE)).items():
        dets = det.detect(frame, idx)
        assert dets.frame_idx.tolist() == [idx] * len(dets)
        truth = np.array(PETS_PEOPLE[idx], np.float32)
        a, b = match_boxes(dets, truth, np.zeros((0, 4), np.float32))
        tp, fp, total = tp + a, fp + b, total + len(truth)
    return tp, fp, total


def rendered_counts(det: Detector, world: Path) -> tuple[int, int, int]:
    """(found, false boxes, people) for big (>= 50 px), mostly visible (>= 75%) rendered people
    on cams 1-2 of a world, every 4th of the first 80 frames; less visible people are ignored."""
    tp = fp = total = 0
    for cam in ("cam1", "cam2"):
        gt = read_mot(world / cam / "gt" / "gt.txt")
        for idx, frame in read_frames(world / cam / "video.mp4", set(range(0, 80, 4))).items():
            g = gt[gt.frame_idx == idx]
            height = g.xyxy[:, 3] - g.xyxy[:, 1]
            want = (g.extra["visibility"] >= 0.75) & (height >= 50)
            a, b = match_boxes(det.detect(frame, idx), g.xyxy[want], g.xyxy[~want])
            tp, fp, total = tp + a, fp + b, total + int(want.sum())
    return tp, fp, total


def read_frames(video: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The frames of ``video`` whose 0-based indices are in ``wanted``."""
    cap = cv2.VideoCapture(str(video))
    out: dict[int, np.ndarray] = {}
    idx = 0
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if idx in wanted:
            out[idx] = frame
        idx += 1
    cap.release()
    return out


@pytest.fixture(scope="session")
def tiny_world(tiny_world: tuple[Path, dict]) -> Path:
    """The shared tiny world (tests/conftest.py), as its folder."""
    return tiny_world[0]


@pytest.fixture(scope="session")
def pets_video() -> Path:
    """The real PETS 2009 clip from ../shared/data; tests using it skip when it is absent."""
    if not PETS.is_file():
        pytest.skip(f"real footage not found at {PETS.resolve()} (shared test data absent)")
    return PETS


@pytest.fixture()
def street_frame() -> np.ndarray:
    """A 360x480 BGR frame: textured ground, a dark upright figure, a bright box."""
    rng = np.random.default_rng(0)
    frame = rng.integers(90, 140, (360, 480, 3), dtype=np.uint8)
    cv2.rectangle(frame, (200, 100), (230, 200), (30, 30, 40), -1)
    cv2.circle(frame, (215, 90), 10, (60, 80, 120), -1)
    cv2.rectangle(frame, (350, 250), (420, 300), (220, 220, 220), -1)
    return frame
