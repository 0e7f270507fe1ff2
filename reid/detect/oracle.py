"""A "detector" that reads the ground truth: perfect boxes, to score later stages alone.

Feeding the tracker and embedder true boxes separates their errors from the detector's (the
MOTChallenge "public detections" idea taken to its limit). Works on any MOTChallenge gt file,
including the synthetic world's ``camN/gt/gt.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reid.data.mot import read_mot
from reid.detect.contract import check_frame, clip_to_frame
from reid.detections import Detections
from reid.errors import ReidTraceError


class OracleDetector:
    """The gt boxes of each frame, confidence 1, true identity in ``extra["gt_id"]``.

    ``honour_consider`` drops rows whose "consider" flag (column 7 of gt.txt) is 0, the boxes
    MOTChallenge scoring ignores. ``min_visibility`` drops mostly hidden people (9-column
    files only); ``classes`` keeps those MOT classes (1 = pedestrian; None = all rows), so a
    MOT17 file's cars and reflections do not reach the tracker. Boxes are clipped to the frame.
    The gt ids are kept only in ``extra``: filling ``track_id`` is the tracker's job.
    """

    def __init__(
        self,
        gt_path: str | Path,
        *,
        honour_consider: bool = True,
        min_visibility: float = 0.0,
        classes: Sequence[int] | None = (1,),
    ) -> None:
        gt = read_mot(gt_path)
        keep = np.ones(len(gt), bool)
        if honour_consider:
            keep &= gt.confidence > 0
        if min_visibility > 0:
            if "visibility" not in gt.extra:
                raise ReidTraceError(
                    f"{Path(gt_path).name} has no visibility column; min_visibility needs one",
                    hint="use a 9-column MOTChallenge gt file, or min_visibility=0",
                )
            keep &= gt.extra["visibility"] >= min_visibility
        if classes is not None and "class" in gt.extra:
            keep &= np.isin(gt.extra["class"], np.asarray(list(classes)))
        gt = gt[keep]
        self.gt_path = Path(gt_path)
        self._ids = gt.track_id if gt.track_id is not None else np.full(len(gt), -1, np.int64)
        self._gt = gt
        order = np.argsort(gt.frame_idx, kind="stable")
        frames, starts = np.unique(gt.frame_idx[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        self._rows = {int(f): order[s:e] for f, s, e in zip(frames, starts, ends, strict=True)}

    def detect(self, frame: np.ndarray, frame_idx: int) -> Detections:
        """The gt boxes of ``frame_idx`` (0-based, as in ``read_mot``), clipped to ``frame``."""
        shape = check_frame(frame).shape
        rows = self._rows.get(int(frame_idx))
        if rows is None:
            return Detections.empty()
        xyxy, ok = clip_to_frame(self._gt.xyxy[rows], shape)
        rows = rows[ok]
        extra = {"gt_id": self._ids[rows]}
        if "visibility" in self._gt.extra:
            extra["visibility"] = self._gt.extra["visibility"][rows]
        return Detections(
            xyxy=xyxy[ok],
            confidence=np.ones(len(rows), np.float32),
            frame_idx=np.full(len(rows), frame_idx, np.int64),
            extra=extra,
        )
