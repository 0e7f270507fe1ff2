"""Background subtraction for static cameras: MOG2 -> morphology -> person-shaped blobs.

No model, no learned notion of "person": anything that moves and is shaped like a standing
person (taller than wide, big enough) is reported. It is cheap and finds people far smaller than
any detector's training data, but people walking together merge into one blob, someone standing
still fades into the background after about ``history`` frames, and a moving camera or sudden
light change makes everything foreground.

Warm-up: the background model is learnt from the frames themselves, so the detector must see
the frames *in order* (every frame, or a fixed stride) and returns nothing for the first
``warmup`` frames it is given, while the model is still mostly the first frame. Feed it from the
start of the video; after a cut or a new video call :meth:`reset`.
"""

from __future__ import annotations

import cv2
import numpy as np

from reid.boxes import xywh_to_xyxy
from reid.detect.contract import check_frame, finalize
from reid.detections import Detections
from reid.errors import ReidTraceError


class Mog2Detector:
    """Moving person-shaped blobs of one static camera.

    ``min_height`` is in pixels, ``min_area`` in pixels of foreground; ``aspect`` bounds the
    blob's height / width (people 1.2 to 5; cars and shadows are wider). ``confidence`` is the
    fraction of the blob's box that is foreground, a rough "how solid is it" score (default
    threshold 0.3 drops sparse noise clusters). Shadows (MOG2's grey label) are not foreground.
    """

    def __init__(
        self,
        *,
        warmup: int = 25,
        history: int = 300,
        var_threshold: float = 25.0,
        min_height: int = 20,
        min_area: int = 120,
        aspect: tuple[float, float] = (1.2, 5.0),
        score_threshold: float = 0.3,
        nms_iou: float = 0.5,
        learning_rate: float = -1.0,
    ) -> None:
        if warmup < 0 or history < 1 or min_height < 1 or aspect[0] >= aspect[1]:
            raise ReidTraceError(
                f"bad MOG2 settings: warmup={warmup}, history={history}, "
                f"min_height={min_height}, aspect={aspect}",
                hint="warmup >= 0, history >= 1, min_height >= 1, aspect=(low, high), low < high",
            )
        self.warmup = int(warmup)
        self.history = int(history)
        self.var_threshold = float(var_threshold)
        self.min_height = int(min_height)
        self.min_area = int(min_area)
        self.aspect = aspect
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.learning_rate = float(learning_rate)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        # Taller than wide: joins head, torso and legs split by clothing that matches the ground.
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 11))
        self.reset()

    def reset(self) -> None:
        """Forget the background (a new video, a cut, a moved camera); warm up again."""
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=self.history, varThreshold=self.var_threshold, detectShadows=True
        )
        self._seen = 0

    def foreground(self, frame: np.ndarray) -> np.ndarray:
        """Update the background model with ``frame``; return the cleaned 0/255 mask."""
        mask = self._mog.apply(check_frame(frame), learningRate=self.learning_rate)
        self._seen += 1
        mask = np.where(mask == 255, 255, 0).astype(np.uint8)  # 127 = shadow
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)

    def detect(self, frame: np.ndarray, frame_idx: int) -> Detections:
        """Person-shaped foreground blobs in ``frame``; empty during the warm-up."""
        frame = check_frame(frame)
        mask = self.foreground(frame)
        if self._seen <= self.warmup:
            return Detections.empty()
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        stats = stats[1:count].astype(np.float32)  # row 0 is the background
        x, y, w, h, area = stats.T if len(stats) else np.zeros((5, 0), np.float32)
        ratio = h / np.maximum(w, 1)
        keep = (
            (h >= self.min_height)
            & (area >= self.min_area)
            & (ratio >= self.aspect[0])
            & (ratio <= self.aspect[1])
        )
        xyxy = xywh_to_xyxy(np.stack([x, y, w, h], axis=1))[keep]
        fill = (area / np.maximum(w * h, 1))[keep]
        return finalize(
            xyxy,
            fill,
            frame.shape,
            frame_idx,
            score_threshold=self.score_threshold,
            nms_iou=self.nms_iou,
        )
