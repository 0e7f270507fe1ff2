"""OpenCV's HOG + linear SVM people detector (Dalal & Triggs): no model file at all.

A fallback for machines where ONNX Runtime is unwanted and a baseline the learned detectors must
beat. Its window is 64x128 pixels with the person about 96 pixels tall inside, so people smaller
than that are invisible to it at native size; ``upscale`` enlarges the frame first (2x finds the
40-90 pixel people of typical surveillance footage, at 4x the cost).
"""

from __future__ import annotations

import cv2
import numpy as np

from reid.detect.contract import check_frame, finalize
from reid.detections import Detections
from reid.errors import ReidTraceError


class HogDetector:
    """HOG people detector; ``confidence`` is the SVM margin squashed by a logistic.

    ``score_threshold`` 0.5 is the SVM's own decision boundary (margin 0); ``win_stride`` and
    ``scale`` trade speed for recall as in ``cv2.HOGDescriptor.detectMultiScale``. HOG boxes
    include the window's margin around the person; ``shrink`` trims it (fraction of the width
    and height, split evenly between the sides). The default is the detector's own geometry:
    Dalal & Triggs train on 64x128 windows with 16 pixels of margin on every side, i.e. the
    person is the central 32x96 (half the width, three quarters of the height); untrimmed boxes
    fail IoU 0.5 against tight ground truth.
    """

    def __init__(
        self,
        *,
        upscale: float = 2.0,
        score_threshold: float = 0.5,
        nms_iou: float = 0.4,
        win_stride: int = 8,
        scale: float = 1.05,
        shrink: tuple[float, float] = (0.5, 0.25),
    ) -> None:
        if not 0.25 <= upscale <= 4:
            raise ReidTraceError(
                f"HOG upscale={upscale} is out of range",
                hint="use 1 for people >= 100 px tall, 2 for 40-90 px (4 at most)",
            )
        self.upscale = float(upscale)
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.win_stride = (int(win_stride), int(win_stride))
        self.scale = float(scale)
        self.shrink = shrink
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, frame: np.ndarray, frame_idx: int) -> Detections:
        """Person boxes in ``frame`` (BGR uint8), in its pixels."""
        frame = check_frame(frame)
        image = frame
        if self.upscale != 1:
            image = cv2.resize(
                frame, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR
            )
        rects, weights = self._hog.detectMultiScale(
            image, hitThreshold=0.0, winStride=self.win_stride, padding=(8, 8), scale=self.scale
        )
        rects = np.asarray(rects, np.float32).reshape(-1, 4) / self.upscale
        margin = np.asarray(weights, np.float32).reshape(-1)
        dx = rects[:, 2] * self.shrink[0] / 2
        dy = rects[:, 3] * self.shrink[1] / 2
        xyxy = np.stack(
            [
                rects[:, 0] + dx,
                rects[:, 1] + dy,
                rects[:, 0] + rects[:, 2] - dx,
                rects[:, 1] + rects[:, 3] - dy,
            ],
            axis=1,
        )
        return finalize(
            xyxy,
            1 / (1 + np.exp(-margin)),
            frame.shape,
            frame_idx,
            score_threshold=self.score_threshold,
            nms_iou=self.nms_iou,
        )
