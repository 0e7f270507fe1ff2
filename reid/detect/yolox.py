"""YOLOX-Nano (or any YOLOX export with the raw head): an installable detector, not bundled.

Megvii's YOLOX-Nano (0.91 M parameters, Apache-2.0) finds more people than the bundled NanoDet
on real footage (PETS: recall 0.92 at precision 0.92 against 0.88 / 0.86) in about the same time
per frame in float, but its file is a third-party download: users install it with
``reidtrace detectors install yolox-nano FILE`` (``reid.detect.catalog``) and ``auto`` picks it.

The export takes BGR 0-255 without normalisation, letterboxed with grey (114) padding, at any
input size that is a multiple of 32; the head is decoded in numpy (``decode.decode_yolox``).
"""

from __future__ import annotations

import math
from pathlib import Path

from reid.detect.onnx_detector import OnnxDetector
from reid.errors import ReidTraceError

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_SCORE_THRESHOLD", "YoloxDetector", "input_size_for"]

DEFAULT_SCORE_THRESHOLD = 0.35
"""The bundled NanoDet's threshold, kept so that ``--low-score`` means the same for both."""
DEFAULT_MAX_PIXELS = 384 * 480
"""Input budget per frame (network pixels): a 480x360 camera runs at its native 384x480; a
larger one is scaled down to about this many pixels (640x480 -> 352x480). Measured with the
default tracker (docs/detection.md, "Input size per camera"): on PETS and the demo world the
native 384x480 gave the best IDF1 and recall of 288x384, 384x480 and 416x416; on TUD-Stadtmitte
352x480 tracked better than its native 480x640 (MOTA 0.81 / IDF1 0.79 against 0.78 / 0.76) in
about 40% less time."""


def input_size_for(frame_hw: tuple[int, int], max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[
    int, int
]:
    """The network input (H, W) for a camera of ``frame_hw``: its native size rounded up to a
    multiple of 32 when that fits ``max_pixels``, else scaled down (aspect kept) to fit.

    Native size means the letterbox neither shrinks people (40-90 px people on PETS lose recall
    when shrunk to 416) nor pays for upsampling a small camera.
    """
    h, w = (int(v) for v in frame_hw)
    if h < 1 or w < 1 or max_pixels < 32 * 32:
        raise ReidTraceError(
            f"cannot size a detector input for a {h}x{w} frame within {max_pixels} pixels",
            hint="frames must be at least 1x1 and the budget at least 32x32 = 1024 pixels",
        )
    up = (math.ceil(h / 32) * 32, math.ceil(w / 32) * 32)
    if up[0] * up[1] <= max_pixels:
        return up
    scale = math.sqrt(max_pixels / (h * w))
    return max(32, int(h * scale) // 32 * 32), max(32, int(w * scale) // 32 * 32)


class YoloxDetector(OnnxDetector):
    """A YOLOX ONNX export with the raw head, person class only.

    ``path`` is the ``.onnx`` file (``auto`` passes the installed one); ``input_size`` (H, W)
    or one side, multiple of 32, default 416x416 (what the file was exported with); the rest is
    :class:`OnnxDetector`'s.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        input_size: int | tuple[int, int] | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_iou: float = 0.5,
        threads: int | None = None,
        max_detections: int = 300,
    ) -> None:
        super().__init__(
            path,
            "yolox",
            score_threshold=score_threshold,
            nms_iou=nms_iou,
            input_size=input_size,
            scale=1.0,
            rgb=False,
            pad_value=114,
            threads=threads,
            max_detections=max_detections,
            resizable=True,
        )
