"""Any ONNX person detector: ONNX Runtime session + letterbox + an output-format adapter.

The bundled NanoDet is one instance of this class; a user's own YOLO, CenterNet or NanoDet
export is another, chosen with ``format=``. Everything a model file can get wrong (not a file,
not ONNX, an input that is not one image batch, outputs that do not fit the chosen format) is
checked when the detector is built, with one dry run, so a bad model fails at start-up with a
message that says what is wrong rather than on the first frame of a long ingest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from reid.detect.contract import check_frame, finalize, letterbox
from reid.detect.decode import (
    DecodeError,
    decode_boxes,
    decode_centernet,
    decode_nanodet,
    decode_yolo,
    decode_yolox,
)
from reid.detect.onnx_graph import free_spatial_dims
from reid.detections import Detections
from reid.errors import ReidTraceError

OutputFormat = Literal["nanodet", "yolo", "yolox", "centernet", "boxes"]
FORMATS: tuple[str, ...] = ("nanodet", "yolo", "yolox", "centernet", "boxes")
DEFAULT_INPUT = {"nanodet": 416, "yolo": 640, "yolox": 416, "centernet": 512, "boxes": 512}
"""Square input used when the model's spatial size is dynamic and none is given."""
DEFAULT_PAD = {"nanodet": 0, "yolo": 114, "yolox": 114, "centernet": 0, "boxes": 0}
"""Letterbox border: what each family was trained with (YOLO pads grey, NanoDet black)."""


WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class BundledWeights(dict[str, Path]):
    """The float and INT8 ONNX files of a detector shipped in ``reid/weights``, by precision.

    ``BundledWeights("nanodet").path("int8")`` -> ``reid/weights/nanodet_person_int8.onnx``,
    with one clear error for an unknown precision or a file missing from the install.
    """

    def __init__(self, family: str, *, missing_hint: str | None = None) -> None:
        super().__init__({p: WEIGHTS_DIR / f"{family}_person_{p}.onnx" for p in ("float", "int8")})
        self.family = family
        self.missing_hint = missing_hint or (
            f"reinstall reidtrace, or rebuild them with deploy/models/convert_{family}.py"
        )

    def path(self, precision: str) -> Path:
        if precision not in self:
            raise ReidTraceError(
                f"unknown {self.family} precision {precision!r}",
                hint=f"choose one of {', '.join(self)}",
            )
        path = self[precision]
        if not path.is_file():
            raise ReidTraceError(
                f"the {self.family} weights are missing: {path}",
                hint=self.missing_hint,
                status=500,
            )
        return path


def make_session(path: Path | bytes, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session: ``threads`` intra-op (default all cores), inter-op 1.

    One inter-op thread because these graphs are a single chain. Idle intra-op threads do not
    spin-wait: ingestion shares the cores with video decoding and other workers, and on a busy
    2-core machine spinning made 2 threads slower than 1 (INT8: 35-47 ms/frame against 20 with
    spinning off; docs/detectors.md). NumPy's OpenBLAS pool should be held to one thread
    (``OPENBLAS_NUM_THREADS=1``, as the Makefile does) for the same reason. ``path`` may also
    be the model's bytes (a model edited in memory, ``reid.detect.onnx_graph``).
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads) if threads else (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # quantised graphs warn about unused initializers
    try:
        model = path if isinstance(path, bytes) else str(path)
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises several private exception types for bad files
        name = "(edited in memory)" if isinstance(path, bytes) else repr(str(path))
        raise ReidTraceError(
            f"ONNX Runtime cannot load the detector model {name}: {err}",
            hint="pass an .onnx file exported with opset >= 11 (for example with "
            "`yolo export format=onnx` or tf2onnx)",
        ) from err


def _free_input(path: Path) -> bytes:
    """The model at ``path`` with its input's height and width symbolic (``onnx_graph``)."""
    try:
        return free_spatial_dims(path.read_bytes())
    except ValueError as err:
        raise ReidTraceError(
            f"cannot resize the input of detector model {path.name!r}: {err}",
            hint="leave input_size out to run the model at its exported size",
        ) from err


class OnnxDetector:
    """Person detector running an ONNX model on CPU.

    Parameters: ``path`` to the ``.onnx`` file; ``format`` of its outputs (module docstring of
    :mod:`reid.detect.decode`); ``score_threshold`` and ``nms_iou``; ``person_class`` and
    ``num_classes`` of the model's label set (COCO: 0 and 80); ``input_size`` (H, W) when the
    model's input is dynamic; preprocessing ``scale``/``mean``/``std`` applied as
    ``(rgb * scale - mean) / std`` (defaults: RGB / 255, which the NanoDet and YOLO exports expect);
    ``rgb=False`` to feed BGR; ``threads`` for ONNX Runtime's intra-op pool; ``resizable=True``
    for a fully convolutional model exported with a fixed input size (YOLOX): ``input_size=``
    then runs it at that size anyway (``reid.detect.onnx_graph``).

    ``detect`` is thread-safe (ONNX Runtime's ``run`` is, and nothing else here changes state):
    two threads sharing one single-threaded session detect frames faster than one call with two
    intra-op threads (NanoDet INT8 on 2 cores: 11.7 against 15.6 ms/frame, benchmarks/ingest.md).
    """

    thread_safe = True

    def __init__(
        self,
        path: str | Path,
        format: OutputFormat = "nanodet",
        *,
        score_threshold: float = 0.35,
        nms_iou: float = 0.5,
        person_class: int = 0,
        num_classes: int = 80,
        input_size: int | tuple[int, int] | None = None,
        scale: float = 1 / 255,
        mean: float | tuple[float, float, float] = 0.0,
        std: float | tuple[float, float, float] = 1.0,
        rgb: bool = True,
        pad_value: int | None = None,
        cell_offset: float = 0.5,
        threads: int | None = None,
        max_detections: int = 300,
        resizable: bool = False,
    ) -> None:
        if format not in FORMATS:
            raise ReidTraceError(
                f"unknown detector output format {format!r}",
                hint=f"choose one of {', '.join(FORMATS)}",
            )
        if not 0 <= score_threshold <= 1 or not 0 < nms_iou <= 1:
            raise ReidTraceError(
                f"score_threshold={score_threshold} and nms_iou={nms_iou} must lie in [0, 1]",
                hint="typical values: score_threshold 0.35, nms_iou 0.5",
            )
        path = Path(path).expanduser()
        if not path.is_file():
            raise ReidTraceError(
                f"detector model {str(path)!r} does not exist",
                hint="pass path= to an .onnx file",
            )
        self.path = path
        self.format: OutputFormat = format
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.person_class = int(person_class)
        self.num_classes = int(num_classes)
        self.cell_offset = float(cell_offset)
        self.max_detections = int(max_detections)
        self.rgb = rgb
        self.pad_value = DEFAULT_PAD[format] if pad_value is None else int(pad_value)
        self._scale = float(scale)
        self._mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self._std = np.asarray(std, np.float32).reshape(-1, 1, 1)
        resize = resizable and input_size is not None
        self.session = make_session(_free_input(path) if resize else path, threads)
        self._input_name, self._nhwc, self.input_hw = self._check_input(input_size)
        self._check_outputs()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path.name!r}, format={self.format!r})"

    def _check_input(self, input_size: int | tuple[int, int] | None) -> tuple[str, bool, tuple]:
        """Validate the model's one input: a float image batch [1, 3, H, W] (or [1, H, W, 3])."""
        inputs = self.session.get_inputs()
        where = f"detector model {self.path.name!r}"
        hint = "a detector takes one float32 image batch [1, 3, H, W]; re-export it that way"
        if len(inputs) != 1:
            got = ", ".join(f"{i.name}{i.shape}" for i in inputs)
            raise ReidTraceError(f"{where} has {len(inputs)} inputs ({got}), not one", hint=hint)
        inp = inputs[0]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ReidTraceError(
                f"{where} input {inp.name!r} has rank {len(shape)} {shape}, not 4", hint=hint
            )
        if inp.type != "tensor(float)":
            raise ReidTraceError(f"{where} input {inp.name!r} is {inp.type}, not float", hint=hint)
        if isinstance(shape[0], int) and shape[0] != 1:
            raise ReidTraceError(
                f"{where} input {inp.name!r} has a fixed batch of {shape[0]}, not 1", hint=hint
            )
        if shape[1] == 3:
            nhwc, hw = False, shape[2:]
        elif shape[3] == 3:
            nhwc, hw = True, shape[1:3]
        else:
            raise ReidTraceError(
                f"{where} input {inp.name!r} {shape} has no axis of 3 colour channels", hint=hint
            )
        if input_size is not None:
            size = (input_size, input_size) if isinstance(input_size, int) else input_size
            want = tuple(int(v) for v in size)
            fixed = [(a, b) for a, b in zip(hw, want, strict=True) if isinstance(a, int)]
            if any(a != b for a, b in fixed):
                raise ReidTraceError(
                    f"input_size={want} does not match {where}'s fixed input {shape}",
                    hint="leave input_size out for models with a fixed input size",
                )
        elif all(isinstance(v, int) and v > 0 for v in hw):
            want = (int(hw[0]), int(hw[1]))
        else:
            side = DEFAULT_INPUT[self.format]
            want = tuple(v if isinstance(v, int) and v > 0 else side for v in hw)
        if want[0] % 32 or want[1] % 32:
            raise ReidTraceError(
                f"{where} input size {want} is not a multiple of 32",
                hint="detection backbones downsample by 32; pass input_size=(640, 640) or similar",
            )
        return inp.name, nhwc, want

    def _check_outputs(self) -> None:
        """Dry-run a blank frame so that a format mismatch is reported now, not mid-ingest."""
        blank = np.zeros((*self.input_hw, 3), np.uint8)
        try:
            self._decode(self._run(blank), min_score=1.1)
        except DecodeError as err:
            shapes = [o.shape for o in self.session.get_outputs()]
            raise ReidTraceError(
                f"detector model {self.path.name!r} outputs {shapes} do not fit "
                f"format={self.format!r}: {err}",
                hint=f"pick the matching format= ({', '.join(FORMATS)}), or set num_classes= / "
                "person_class= for a model not trained on COCO's 80 classes",
            ) from err

    def _blob(self, image: np.ndarray) -> np.ndarray:
        """Letterboxed BGR uint8 -> the model's float input tensor."""
        if self.rgb:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        chw = image.transpose(2, 0, 1).astype(np.float32) * self._scale
        if self._mean.any() or (self._std != 1).any():
            chw = (chw - self._mean) / self._std
        blob = chw[None]
        return np.ascontiguousarray(blob.transpose(0, 2, 3, 1) if self._nhwc else blob)

    def _run(self, image: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self._input_name: self._blob(image)})

    def _decode(self, outputs: list[np.ndarray], min_score: float) -> tuple[np.ndarray, np.ndarray]:
        if self.format == "nanodet":
            return decode_nanodet(
                outputs,
                self.input_hw,
                min_score=min_score,
                person_class=self.person_class,
                num_classes=self.num_classes,
                cell_offset=self.cell_offset,
            )
        if self.format == "boxes":
            rows = [o for o in outputs if o.ndim == 3 and o.shape[-1] == 6] or outputs
            return decode_boxes(rows[0], min_score=min_score, person_class=self.person_class)
        if self.format == "yolox":
            return decode_yolox(
                outputs[0],
                self.input_hw,
                min_score=min_score,
                person_class=self.person_class,
                num_classes=self.num_classes,
            )
        if self.format == "yolo":
            outs = [o for o in outputs if o.ndim == 3] or outputs
            return decode_yolo(
                outs[0],
                min_score=min_score,
                person_class=self.person_class,
                num_classes=self.num_classes,
            )
        return decode_centernet(
            *self._centernet_heads(outputs),
            self.input_hw,
            min_score=min_score,
            person_class=self.person_class,
        )

    def _centernet_heads(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """Pick heatmap, size and offset: by name (hm/wh/reg|off) where named, else by order."""
        names = [o.name.lower() for o in self.session.get_outputs()]
        maps = [(n, o) for n, o in zip(names, outputs, strict=True) if o.ndim == 4]
        heat = [o for n, o in maps if o.shape[1] != 2 or "hm" in n or "heat" in n]
        two = [(n, o) for n, o in maps if o.shape[1] == 2 and "hm" not in n and "heat" not in n]
        wh = [o for n, o in two if "wh" in n or "size" in n]
        off = [o for n, o in two if "reg" in n or "off" in n]
        if len(wh) != 1 or len(off) != 1:  # unnamed: CenterNet's own head order is wh, reg
            wh, off = [o for _, o in two[:1]], [o for _, o in two[1:2]]
        if len(heat) != 1 or not wh or not off:
            raise DecodeError(
                f"need one heatmap [1, C, h, w] and two [1, 2, h, w] maps (size, offset), "
                f"got {[(n, o.shape) for n, o in maps]}"
            )
        return heat[0], wh[0], off[0]

    def detect(self, frame: np.ndarray, frame_idx: int) -> Detections:
        """Person boxes in ``frame`` (BGR uint8), in its pixels, thresholded and NMS'd."""
        frame = check_frame(frame)
        image, lb = letterbox(frame, self.input_hw, self.pad_value)
        xyxy, scores = self._decode(self._run(image), min_score=self.score_threshold)
        return finalize(
            lb.to_frame(xyxy),
            scores,
            frame.shape,
            frame_idx,
            score_threshold=self.score_threshold,
            nms_iou=self.nms_iou,
            max_detections=self.max_detections,
        )
