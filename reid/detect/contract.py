"""The contract every detector obeys: frames in (checked, letterboxed), boxes out (clipped,
thresholded, slivers dropped, overlaps suppressed).

Kept in one place so that every detector obeys the same output contract (person boxes in frame
pixels, clipped to the frame, above the score threshold, overlaps suppressed) and a change to
that contract is made once. The box geometry itself lives in :mod:`reid.boxes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reid.boxes import clip_boxes, xyxy_to_xywh
from reid.detections import Detections
from reid.errors import ReidTraceError

__all__ = ["MIN_BOX_SIDE", "Letterbox", "check_frame", "clip_to_frame", "finalize", "letterbox"]

MIN_BOX_SIDE = 2.0
"""Boxes thinner than this (pixels, after clipping) are slivers at the frame edge, not people."""


@dataclass(frozen=True)
class Letterbox:
    """Where a frame went inside the network input: ``input = frame * scale + pad``."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map (n, 4) boxes from network-input pixels back to frame pixels."""
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        return ((np.asarray(xyxy, np.float32) - pad) / self.scale).astype(np.float32)


def letterbox(
    frame: np.ndarray, size_hw: tuple[int, int], pad_value: int = 0
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``frame`` keeping its aspect ratio and centre it on a ``size_hw`` canvas.

    A plain resize to the square input squashes people sideways; with the aspect kept the
    pretrained detector sees people shaped as in its training data (3-4 recall points on PETS).
    """
    h, w = frame.shape[:2]
    out_h, out_w = size_hw
    scale = min(out_w / w, out_h / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interp)
    pad_x, pad_y = (out_w - new_w) // 2, (out_h - new_h) // 2
    canvas = cv2.copyMakeBorder(
        resized,
        pad_y,
        out_h - new_h - pad_y,
        pad_x,
        out_w - new_w - pad_x,
        cv2.BORDER_CONSTANT,
        value=(pad_value, pad_value, pad_value),
    )
    # The resized size is rounded, so the effective scale differs per axis by < 1 px; using the
    # x scale for both keeps the mapping a single similarity, error < 0.5 px.
    return canvas, Letterbox(scale=new_w / w, pad_x=float(pad_x), pad_y=float(pad_y))


def check_frame(frame: np.ndarray) -> np.ndarray:
    """Accept a BGR (H, W, 3) or grey (H, W) uint8 frame; return it as BGR."""
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        shape = getattr(frame, "shape", type(frame).__name__)
        raise ReidTraceError(
            f"a frame must be an image array (H, W, 3) or (H, W), got {shape}",
            hint="pass frames as cv2.VideoCapture.read() returns them (BGR uint8)",
        )
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] != 3:
        raise ReidTraceError(
            f"a frame must have 1, 3 or 4 channels, got shape {frame.shape}",
            hint="pass frames as cv2.VideoCapture.read() returns them (BGR uint8)",
        )
    return frame


def clip_to_frame(xyxy: np.ndarray, frame_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the frame, and the mask of those at least ``MIN_BOX_SIDE`` on each side.

    What is left of a box overhanging the edge is what anyone will ever see of that person; a
    sliver left by clipping is not a person.
    """
    xyxy = clip_boxes(xyxy, frame_shape)
    return xyxy, np.all(xyxy[:, 2:] - xyxy[:, :2] >= MIN_BOX_SIDE, axis=1)


def finalize(
    xyxy: np.ndarray,
    scores: np.ndarray,
    frame_shape: tuple[int, ...],
    frame_idx: int,
    *,
    score_threshold: float,
    nms_iou: float,
    max_detections: int = 300,
    extra: dict[str, np.ndarray] | None = None,
) -> Detections:
    """Threshold, clip to the frame, drop slivers, suppress overlaps, sort by score.

    Clipping comes before NMS so that two boxes overhanging the same edge are compared as the
    parts anyone will ever see. NMS is OpenCV's (greedy, class-agnostic: every box is a person).
    """
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    extra = dict(extra or {})
    keep = scores >= score_threshold
    scores = scores[keep]
    extra = {k: v[keep] for k, v in extra.items()}
    xyxy, keep = clip_to_frame(xyxy[keep], frame_shape)
    xyxy, scores = xyxy[keep], scores[keep]
    extra = {k: v[keep] for k, v in extra.items()}
    if len(xyxy) and nms_iou < 1.0:
        boxes = xyxy_to_xywh(xyxy).tolist()
        idx = cv2.dnn.NMSBoxes(boxes, scores.tolist(), float(score_threshold), float(nms_iou))
        idx = np.asarray(idx, np.int64).reshape(-1)
    else:
        idx = np.arange(len(xyxy))
    idx = idx[np.argsort(-scores[idx], kind="stable")][:max_detections]
    return Detections(
        xyxy=xyxy[idx],
        confidence=scores[idx],
        frame_idx=np.full(len(idx), frame_idx, np.int64),
        extra={k: v[idx] for k, v in extra.items()},
    )
