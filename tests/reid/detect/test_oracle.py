"""Oracle detector: gt boxes per frame, consider flag, visibility, classes, clipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid.detect import OracleDetector
from reid.errors import ReidTraceError

GT = """\
1,1,10,20,30,60,1,1,1
1,2,100,20,30,60,0,1,1
1,3,200,20,30,60,1,1,0.1
1,4,300,20,30,60,1,3,1
2,1,90,300,40,100,1,1,0.8
"""


def test_frames_flags_and_clipping(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text(GT)
    frame = np.zeros((360, 480, 3), np.uint8)
    det = OracleDetector(gt)
    first = det.detect(frame, 0)  # MOT frame 1 is frame_idx 0
    assert first.extra["gt_id"].tolist() == [1, 3]  # 2: consider=0, 4: class 3
    np.testing.assert_allclose(first.confidence, 1.0)
    assert first.track_id is None  # ids are for the tracker to find
    second = det.detect(frame, 1)
    np.testing.assert_allclose(second.xyxy, [[90, 300, 130, 360]])  # clipped at the bottom
    assert len(det.detect(frame, 9)) == 0
    everything = OracleDetector(gt, honour_consider=False, classes=None, min_visibility=0.5)
    assert everything.detect(frame, 0).extra["gt_id"].tolist() == [1, 2, 4]


def test_min_visibility_needs_the_column(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,20,30,60\n")
    assert len(OracleDetector(gt).detect(np.zeros((50, 50), np.uint8), 0)) == 1
    with pytest.raises(ReidTraceError, match="no visibility column"):
        OracleDetector(gt, min_visibility=0.25)
