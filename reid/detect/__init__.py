"""Person detectors behind one protocol (:class:`reid.protocols.Detector`).

``create_detector(name, **kwargs)`` is the one way callers (CLI, ingestion, benchmarks) build a
detector, so a name in a config file maps to exactly one implementation:

=================  ==========================================================================
``nanodet``        bundled NanoDet COCO detector, INT8 (the default; same people as float)
``nanodet-float``  the same network in float32 (reference for the INT8 one)
``nanodet-int8``   explicit INT8 (what ``nanodet`` currently means)
``centernet``      CenterNet (MobileNetV3) COCO detector, built locally: more recall, ~3x the time
``yolox``          a YOLOX export with the raw head (``path=``; installed YOLOX-Nano: below)
``onnx``           a user's ``.onnx`` file: ``path=``, ``format=`` nanodet, yolo, yolox, centernet,
                   boxes
``hog``            OpenCV HOG people detector (``upscale=2`` for 40-90 px people)
``mog2``           background subtraction for static cameras (needs frames in order; warm-up)
``oracle``         ground-truth boxes from a MOTChallenge ``gt.txt`` (``gt_path=``)
=================  ==========================================================================

Named models (``auto``, ``yolox-nano``: the bundled NanoDet or a model the user installed) are
resolved to one of these names by ``reid.detect.catalog.resolve_detector``.

All return person boxes only, in frame pixels, clipped to the frame, thresholded and NMS'd.
Measured recall, precision and speed are in ``docs/detectors.md``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from reid.detect.centernet import CenterNetDetector
from reid.detect.hog import HogDetector
from reid.detect.mog2 import Mog2Detector
from reid.detect.nanodet import DEFAULT_PRECISION, NanoDetDetector
from reid.detect.onnx_detector import OnnxDetector
from reid.detect.oracle import OracleDetector
from reid.detect.yolox import YoloxDetector
from reid.errors import ReidTraceError
from reid.protocols import Detector

__all__ = [
    "CenterNetDetector",
    "HogDetector",
    "Mog2Detector",
    "NanoDetDetector",
    "OnnxDetector",
    "OracleDetector",
    "YoloxDetector",
    "create_detector",
    "detector_class",
    "detector_options",
    "list_detectors",
]

_REGISTRY: dict[str, tuple[Callable[..., Detector], dict[str, Any]]] = {
    "nanodet": (NanoDetDetector, {"precision": DEFAULT_PRECISION}),
    "nanodet-float": (NanoDetDetector, {"precision": "float"}),
    "nanodet-int8": (NanoDetDetector, {"precision": "int8"}),
    "centernet": (CenterNetDetector, {}),
    "yolox": (YoloxDetector, {}),
    "onnx": (OnnxDetector, {}),
    "hog": (HogDetector, {}),
    "mog2": (Mog2Detector, {}),
    "oracle": (OracleDetector, {}),
}


def list_detectors() -> list[str]:
    """The names :func:`create_detector` accepts."""
    return list(_REGISTRY)


def _lookup(name: str) -> tuple[str, Callable[..., Detector], dict[str, Any]]:
    """The registry entry of ``name`` (case and ``_``/``-`` ignored); unknown names say the
    valid ones."""
    key = name.strip().lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ReidTraceError(
            f"unknown detector {name!r}",
            hint=f"valid detectors: {', '.join(_REGISTRY)}",
        )
    return key, *_REGISTRY[key]


def detector_options(name: str) -> list[str]:
    """The options ``create_detector(name, ...)`` accepts (for callers that set, say, ``threads``
    only where a detector has them); unknown names raise like ``create_detector``."""
    _, factory, fixed = _lookup(name)
    return [p for p in inspect.signature(factory).parameters if p not in fixed]


def detector_class(name: str) -> Callable[..., Detector]:
    """The class (factory) behind ``name``, to read its traits (``thread_safe``) without
    building it; unknown names raise like ``create_detector``."""
    return _lookup(name)[1]


def create_detector(name: str, **kwargs: Any) -> Detector:
    """Build the detector registered as ``name`` with ``kwargs`` (its constructor's options).

    Unknown names and unknown or missing options raise :class:`ReidTraceError` listing what is
    valid, since both usually come straight from a config file or the command line.
    """
    key, factory, fixed = _lookup(name)
    params = inspect.signature(factory).parameters
    clash = sorted(set(kwargs) & set(fixed))
    if clash:
        raise ReidTraceError(
            f"detector {key!r} fixes {clash}; they cannot be passed",
            hint=f"use another detector name ({', '.join(_REGISTRY)}) to change them",
        )
    unknown = sorted(set(kwargs) - set(params))
    missing = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in kwargs
        and p.name not in fixed
    ]
    if unknown or missing:
        what = f"unknown options {unknown}" if unknown else f"missing options {missing}"
        options = ", ".join(p for p in params if p not in fixed)
        raise ReidTraceError(
            f"detector {key!r}: {what}",
            hint=f"{key!r} takes: {options}",
        )
    return factory(**fixed, **kwargs)
