"""HOG (upscaling for small people) and MOG2 (warm-up, moving people, reset)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid.data.mot import read_mot
from reid.detect import HogDetector, Mog2Detector

from .conftest import PETS_PEOPLE, match_boxes, read_frames


def test_hog_needs_upscaling_for_40_to_90_px_people(pets_video: Path) -> None:
    frames = read_frames(pets_video, {290, 530})
    found = {}
    for upscale in (1.0, 2.0):
        det = HogDetector(upscale=upscale)
        found[upscale] = sum(
            match_boxes(det.detect(f, i), np.array(PETS_PEOPLE[i], np.float32), np.zeros((0, 4)))[0]
            for i, f in frames.items()
        )
    # measured: 1 of 12 at native size, 10 of 12 at 2x
    assert found[1.0] <= 3
    assert found[2.0] >= 7


def test_mog2_warms_up_then_finds_walkers(tiny_world: Path) -> None:
    video = tiny_world / "cam1" / "video.mp4"
    gt = read_mot(tiny_world / "cam1" / "gt" / "gt.txt")
    frames = read_frames(video, set(range(80)))
    det = Mog2Detector(warmup=20)
    tp = total = 0
    for idx in sorted(frames):
        dets = det.detect(frames[idx], idx)
        if idx < 20:
            assert len(dets) == 0, "nothing is reported while the background is learnt"
        if idx >= 40:
            g = gt[gt.frame_idx == idx]
            want = (g.extra["visibility"] >= 0.75) & (g.xyxy[:, 3] - g.xyxy[:, 1] >= 30)
            tp += match_boxes(dets, g.xyxy[want], g.xyxy[~want])[0]
            total += int(want.sum())
    assert total >= 20
    assert tp / total >= 0.7, f"MOG2 found {tp} of {total} walkers"  # measured 41 of 41
    det.reset()
    assert len(det.detect(frames[79], 79)) == 0  # warming up again
