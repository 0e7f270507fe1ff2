"""Post-training INT8 quantization of an ONNX ReID model, with ONNX Runtime's quantizer.

``quantize_onnx`` turns one of our FP32 exports into a static QDQ INT8 file the embedder runs
unchanged:

1. optionally strips the flip averaging baked into the graph (``flip=False``: one pass a crop
   instead of two; ``docs/compression.md`` has the measured trade-off);
2. ``quant_pre_process``: shape inference and ONNX Runtime's graph optimisations (BatchNorm
   folded into the convs), which the quantizer needs to see the real layers;
3. calibration on real crops of the training domain (``compression.calibration``), one batch at
   a time: MinMax, Entropy or Percentile ranges of every activation;
4. static QDQ quantization, per-channel symmetric INT8 weights, asymmetric UINT8 activations
   (what ONNX Runtime's x86 kernels with VNNI run fastest);
5. per-layer-type precision: each layer type (stem conv, depthwise conv, pointwise conv,
   residual add, fully connected) is timed in INT8 against FP32 on this CPU, everything else
   INT8; a type that makes the model at least 5% faster in FP32 stays FP32
   (``fp32_types="auto"``; ``fp32_nodes`` keeps chosen nodes FP32 whatever their type). The
   decision and the timings go into the file's metadata;
6. bias correction (``compression.bias_correction``): each INT8 conv's INT32 bias is moved,
   in forward order, so that its mean output on calibration crops matches FP32;
7. the file is compacted (:func:`compact_qdq`: all-zero zero points of stored INT8 weights and
   INT32 biases and the shape annotations dropped; the same numbers, about 4% fewer bytes);
8. the input contract (ONNX metadata) is copied, ``precision`` and ``quantization`` are added,
   and FP32 and INT8 embeddings of held-out crops are compared (cosine) before the file is kept.

Only the network body is quantized. The flip head (Slice + Concat on the batch axis), global
pooling, the BNNeck and the L2 normalisation stay FP32: they cost little, and quantizing the
pooled embedding itself would put 8-bit steps straight into the vector the index compares.
The output is written under a temporary name and renamed into place at the end, so a failure
never leaves a half-made model at ``out_path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from compression.bias_correction import correct_biases
from compression.calibration import CropReader, find_crops, sample_crops
from reid.embed import OnnxEmbedder
from reid.errors import ReidTraceError

__all__ = [
    "LAYER_TYPES",
    "METHODS",
    "QuantReport",
    "compact_qdq",
    "layer_types",
    "quantize_onnx",
    "strip_flip_average",
]

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
"""Calibration methods by CLI name."""
LAYER_TYPES = ("conv", "depthwise_conv", "pointwise_conv", "residual_add", "linear")
"""Layer types that can be INT8 or FP32 (``layer_types`` classifies nodes into them)."""
_ACTIVATIONS = {"Clip", "Relu"}
PROBE_MARGIN = 0.05
"""A layer type stays FP32 only when that makes the model at least 5% faster than all-INT8:
smaller differences are within timing noise, and INT8 is the smaller file."""
Progress = Callable[[str, int, int], None]


@dataclass
class QuantReport:
    """What ``quantize_onnx`` did; also stored (without ``out``) in the file's metadata."""

    out: str
    source: str
    method: str
    percentile: float | None
    per_channel: bool
    flip: bool
    calibration_crops: int
    calibration_source: str
    int8_types: list[str]
    fp32_types: list[str]
    fp32_nodes: list[str]
    layer_counts: dict[str, int]
    probe_ms: dict[str, float] = field(default_factory=dict)
    """Fastest batch time (ms) of the FP32 model, the all-INT8 model and each model with one
    layer type left in FP32 (``fp32:<type>``)."""
    probe_batch: int = 0
    bias_corrected: int = 0
    """INT8 convs whose bias was corrected (``compression.bias_correction``); 0 = off."""
    dropped_zero_points: int = 0
    """All-zero weight and bias zero points :func:`compact_qdq` removed."""
    cosine_min: float = float("nan")
    cosine_mean: float = float("nan")
    check_crops: int = 0
    size_bytes: int = 0
    source_size_bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def quantize_onnx(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration: str | Path | Sequence[str | Path],
    *,
    method: str = "percentile",
    percentile: float = 99.999,
    num_crops: int = 256,
    per_channel: bool = True,
    fp32_types: str | Sequence[str] = "auto",
    fp32_nodes: Sequence[str] = (),
    flip: bool | None = None,
    probe_batch: int = 8,
    probe_repeats: int = 7,
    check_crops: int = 64,
    bias_correction: bool = True,
    bias_crops: int = 64,
    seed: int = 0,
    threads: int = 2,
    progress: Progress | None = None,
) -> QuantReport:
    """Quantize the FP32 ONNX model ``fp32_path`` to static INT8 at ``out_path``.

    ``calibration``: a Market folder (its ``bounding_box_train/``), a folder of crops or a list
    of images; ``num_crops`` of them (fixed ``seed``) calibrate, up to ``check_crops`` others
    check the result. ``method``: ``minmax``, ``entropy`` or ``percentile`` (the
    ``percentile``-th of each activation's histogram, 99.999 by default). ``flip``:
    None keeps the source's flip averaging, False strips it (one pass a crop), True requires
    it. ``fp32_types``: ``"auto"`` (time each layer type in INT8 vs FP32 on this CPU, batch
    ``probe_batch``, ``threads`` threads, fastest of ``probe_repeats``; a type stays FP32 when
    that is at least ``PROBE_MARGIN`` faster), ``"none"`` (everything INT8) or a list of
    ``LAYER_TYPES``. ``fp32_nodes``:
    node names kept FP32 whatever their type (e.g. an accuracy-sensitive first block).
    ``bias_correction``: move each INT8 conv's bias so its mean output on ``bias_crops`` of
    the calibration crops matches FP32 (``compression.bias_correction``; bias values only).
    """
    t0 = time.perf_counter()
    src, out = Path(fp32_path), Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise ReidTraceError(
            f"the INT8 output must end in .onnx, got {str(out)!r}",
            hint="the embedder and `reidtrace evaluate` tell model kinds apart by extension",
        )
    if out.resolve() == src.resolve():
        raise ReidTraceError("--out is the source model", hint="write the INT8 model elsewhere")
    if method not in METHODS:
        raise ReidTraceError(
            f"unknown calibration method {method!r}", hint=f"choose one of {sorted(METHODS)}"
        )
    fixed = _check_types(fp32_types)
    if not 50.0 < percentile <= 100.0:
        raise ReidTraceError(
            f"percentile must be in (50, 100], got {percentile}", hint="try 99.999 or 99.99"
        )
    if bias_correction and bias_crops < 1:
        raise ReidTraceError(
            f"bias correction needs at least 1 crop, got {bias_crops}",
            hint="use 64 crops, or turn bias correction off",
        )
    embedder = OnnxEmbedder(src, threads=threads)  # validates the file and its contract
    contract = embedder.contract
    proto = onnx.load(str(src))
    if proto.graph.node and any(n.op_type == "QuantizeLinear" for n in proto.graph.node):
        raise ReidTraceError(
            f"{src.name} is already quantized", hint="quantize the FP32 export of the model"
        )
    meta = {p.key: p.value for p in proto.metadata_props}
    has_flip = meta.get("flip_average") == "1"
    if flip is True and not has_flip:
        raise ReidTraceError(
            f"{src.name} has no flip averaging in its graph",
            hint="export it with `reidtrace export --flip`, or quantize without --flip",
        )
    keep_flip = has_flip if flip is None else flip
    crops = find_crops(calibration)
    calib_paths = sample_crops(crops, num_crops, seed=seed)
    chosen = set(calib_paths)
    rest = [p for p in crops if p not in chosen]
    check_paths = sample_crops(rest, check_crops, seed=seed + 1) if rest else calib_paths
    check_paths = check_paths[:check_crops]
    if isinstance(calibration, str | Path):
        calib_source = str(calibration)
    else:
        calib_source = f"{len(crops)} listed images"

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tempfile.TemporaryDirectory(prefix="reidtrace-quant-") as work_dir:
            work = Path(work_dir)
            fp32 = work / "fp32.onnx"
            if has_flip and not keep_flip:
                proto = strip_flip_average(proto)
            onnx.save(proto, str(fp32))
            prep = work / "prep.onnx"
            with _quiet():
                quant_pre_process(str(fp32), str(prep))
            prep_proto = onnx.load(str(prep))
            kinds = layer_types(prep_proto)
            keep_nodes = set(fp32_nodes)
            unknown = sorted(keep_nodes - set(kinds))
            if unknown:
                raise ReidTraceError(
                    f"no quantizable node named {unknown[0]!r} in {src.name}",
                    hint="name Conv/Gemm/MatMul/Add nodes of the model (e.g. "
                    f"{next(iter(kinds))!r}); Netron shows them",
                )
            present = sorted(set(kinds.values()), key=LAYER_TYPES.index)
            ops = {n.name: n.op_type for n in prep_proto.graph.node}
            compute = {k: v for k, v in kinds.items() if ops[k] not in _ACTIVATIONS}
            input_name = prep_proto.graph.input[0].name
            reader = CropReader(calib_paths, contract, input_name, progress=progress)
            cache = work / "ranges.json"

            def make(exclude: set[str], path: Path) -> None:
                nodes = _nodes_for(prep_proto, kinds, set(present) - exclude, keep_nodes)
                _quantize(
                    prep, path, reader, METHODS[method], per_channel, nodes, cache, percentile
                )

            all_int8 = work / "int8_all.onnx"
            make(set(), all_int8)  # calibrates once; the cache serves every later variant
            probe: dict[str, float] = {}
            if fixed is None:
                variants = {"fp32": prep, "all_int8": all_int8}
                for i, kind in enumerate(present):
                    if progress:
                        progress("timing layer types", i, len(present))
                    path = work / f"fp32_{kind}.onnx"
                    make({kind}, path)
                    variants[f"fp32:{kind}"] = path
                x = reader.images()[:probe_batch]
                probe = _time_variants(variants, x, threads, probe_repeats)
                if progress:
                    progress("timing layer types", len(present), len(present))
                margin = probe["all_int8"] * (1 - PROBE_MARGIN)
                keep = [k for k in present if probe[f"fp32:{k}"] < margin]
            else:
                keep = [k for k in fixed if k in present]
            final = work / "int8.onnx"
            if keep or keep_nodes:
                make(set(keep), final)
            else:
                final = all_int8
            q = onnx.load(str(final))
            corrected = 0
            if bias_correction:
                corrected = correct_biases(
                    prep_proto, q, reader.images()[:bias_crops], threads=threads,
                    progress=progress,
                )  # fmt: skip
            report = QuantReport(
                out=str(out),
                source=src.name,
                method=method,
                percentile=percentile if method == "percentile" else None,
                per_channel=per_channel,
                flip=keep_flip,
                calibration_crops=len(calib_paths),
                calibration_source=calib_source,
                int8_types=[k for k in present if k not in keep],
                fp32_types=keep,
                fp32_nodes=sorted(keep_nodes),
                layer_counts={k: sum(v == k for v in compute.values()) for k in present},
                probe_ms={k: round(v, 3) for k, v in probe.items()},
                probe_batch=probe_batch if probe else 0,
                bias_corrected=corrected,
                source_size_bytes=src.stat().st_size,
            )
            new_meta = dict(meta)
            new_meta.pop("flip_average", None)
            if keep_flip:
                new_meta["flip_average"] = "1"
            new_meta["precision"] = "int8"
            summary = {k: v for k, v in report.as_dict().items() if k not in ("out", "seconds")}
            new_meta["quantization"] = json.dumps(summary, sort_keys=True)
            del q.metadata_props[:]
            helper.set_model_props(q, new_meta)
            q.doc_string = (proto.doc_string + " (static INT8, QDQ)").strip()
            report.dropped_zero_points = compact_qdq(q)
            onnx.save(q, str(tmp_out))
        cos = _compare(src, tmp_out, check_paths, has_flip and not keep_flip, threads)
        report.cosine_min, report.cosine_mean = float(cos.min()), float(cos.mean())
        report.check_crops = len(cos)
        # the final metadata carries the check too: rewrite once more before the rename
        q = onnx.load(str(tmp_out))
        summary = {k: v for k, v in report.as_dict().items() if k not in ("out", "seconds")}
        summary["cosine_min"], summary["cosine_mean"] = (
            round(report.cosine_min, 5),
            round(report.cosine_mean, 5),
        )
        for prop in q.metadata_props:
            if prop.key == "quantization":
                prop.value = json.dumps(summary, sort_keys=True)
        onnx.save(q, str(tmp_out))
        os.replace(tmp_out, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_out.unlink()
    report.size_bytes = out.stat().st_size
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def _check_types(fp32_types: str | Sequence[str]) -> list[str] | None:
    """None for ``"auto"``; otherwise the validated list of layer types to keep in FP32."""
    if isinstance(fp32_types, str):
        key = fp32_types.strip().lower()
        if key == "auto":
            return None
        if key in ("none", ""):
            return []
        fp32_types = [t.strip() for t in key.split(",") if t.strip()]
    bad = [t for t in fp32_types if t not in LAYER_TYPES]
    if bad:
        raise ReidTraceError(
            f"unknown layer type(s) {', '.join(bad)} for FP32 fallback",
            hint=f"use auto, none or a comma-separated list of {', '.join(LAYER_TYPES)}",
        )
    return list(fp32_types)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantizer prints to stdout; `--json` owns stdout, so send it to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def layer_types(proto: onnx.ModelProto) -> dict[str, str]:
    """``{node name: layer type}`` for every node that may run in INT8.

    Conv with groups == input channels is ``depthwise_conv``, a 1x1 conv ``pointwise_conv``,
    any other conv ``conv``; Gemm/MatMul with a constant weight ``linear``; an Add with a conv
    among its inputs ``residual_add`` (MobileNetV2's and ResNet's skip connections; the flip
    head's Add of two slices is not one). A Clip/Relu right after a conv belongs to that conv
    (the quantizer folds it into the conv's output range).
    """
    inits = {i.name: list(i.dims) for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    kinds: dict[str, str] = {}
    for node in proto.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits:
            w = inits[node.input[1]]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if group > 1 and w[1] == 1:
                kinds[node.name] = "depthwise_conv"
            elif len(w) == 4 and w[2] * w[3] == 1:
                kinds[node.name] = "pointwise_conv"
            else:
                kinds[node.name] = "conv"
        elif node.op_type in ("Gemm", "MatMul") and any(i in inits for i in node.input[1:2]):
            kinds[node.name] = "linear"
        elif node.op_type == "Add":
            ops = {producer[i].op_type for i in node.input if i in producer}
            if "Conv" in ops:
                kinds[node.name] = "residual_add"
    for node in proto.graph.node:
        src = producer.get(node.input[0]) if node.input else None
        if node.op_type in _ACTIVATIONS and src is not None and src.name in kinds:
            kinds[node.name] = kinds[src.name]
    if not any(v for v in kinds.values()):
        raise ReidTraceError(
            "the model has no convolution or fully connected layer to quantize",
            hint="pass a CNN ReID model exported with `reidtrace export`",
        )
    return kinds


def _nodes_for(
    proto: onnx.ModelProto, kinds: dict[str, str], chosen: set[str], fp32_nodes: set[str]
) -> list[str]:
    """Names of the nodes to quantize: those of the ``chosen`` layer types, except the nodes
    in ``fp32_nodes`` and the activation right after each of them.

    The activation *in front of* an FP32 layer stays INT8: quantized, it is fused into the conv
    before it, whose output then keeps the activation's narrow [0, 6] range. Left in FP32 (this
    module's rule until 2026-12-07), that conv's output was quantized over its raw
    pre-activation range instead, coarser steps that made keeping a layer FP32 *lower* the
    cosine to FP32 (``docs/journal/compression.md``). The FP32 layer then reads a
    DequantizeLinear output directly, which ``_guard_float_layers`` takes care of.
    """
    producer = {o: n for n in proto.graph.node for o in n.output}

    def src(node: onnx.NodeProto) -> onnx.NodeProto | None:
        return producer.get(node.input[0]) if node.input else None

    def is_fp32(node: onnx.NodeProto) -> bool:
        if node.name not in kinds:
            return False
        if kinds[node.name] not in chosen or node.name in fp32_nodes:
            return True
        s = src(node)  # an activation belongs to the conv before it
        return node.op_type in _ACTIVATIONS and s is not None and s.name in fp32_nodes

    return [n.name for n in proto.graph.node if n.name in kinds and not is_fp32(n)]


def _guard_float_layers(proto: onnx.ModelProto) -> int:
    """Put an exact no-op Clip between a DequantizeLinear and each FP32 layer reading it.

    Why: when an FP32 Conv/Gemm/MatMul reads a DequantizeLinear output directly, ONNX Runtime's
    ``WeightBiasQuantization`` graph optimisation quantizes its FP32 weights *per tensor* when
    the session loads, which wrecks depthwise convs (BN-folded weights span very different
    ranges per channel: cosine to FP32 0.84 instead of 0.97 with one depthwise conv of the
    shipped model left FP32). The Clip's bounds are the ends of the quantized grid
    (``scale * (qmin - zero_point)``, ``scale * (qmax - zero_point)``), so it changes no value;
    it only hides the DequantizeLinear from that optimisation, in every runtime that loads the
    file. Returns the number of guards inserted (in place).
    """
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    guards: dict[str, str] = {}  # dequantized tensor -> its guarded copy
    new_nodes: list[onnx.NodeProto] = []
    for node in g.node:
        weight = node.input[1] if len(node.input) > 1 else ""
        dq = producer.get(node.input[0]) if node.input else None
        if (
            node.op_type in ("Conv", "Gemm", "MatMul")
            and weight in inits  # an FP32 weight (a quantized one comes from a DQ node)
            and dq is not None
            and dq.op_type == "DequantizeLinear"
        ):
            x = node.input[0]
            if x not in guards:
                scale = float(onnx.numpy_helper.to_array(inits[dq.input[1]]))
                zp_init = inits.get(dq.input[2]) if len(dq.input) > 2 else None
                zp_arr = onnx.numpy_helper.to_array(zp_init) if zp_init is not None else None
                zp = float(zp_arr) if zp_arr is not None else 0.0
                info = np.iinfo(zp_arr.dtype if zp_arr is not None else np.uint8)
                lo, hi = scale * (info.min - zp), scale * (info.max - zp)
                name = f"{x}_float_guard"
                g.initializer.extend(
                    [
                        onnx.numpy_helper.from_array(np.array(lo, np.float32), f"{name}_lo"),
                        onnx.numpy_helper.from_array(np.array(hi, np.float32), f"{name}_hi"),
                    ]
                )
                new_nodes.append(
                    helper.make_node(
                        "Clip", [x, f"{name}_lo", f"{name}_hi"], [name], name=f"{name}_clip"
                    )
                )
                guards[x] = name
            node.input[0] = guards[x]
        new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    return len(guards)


@contextlib.contextmanager
def _constant_activation_hint(method: CalibrationMethod) -> Iterator[None]:
    """numpy's histogram (entropy and percentile calibration) fails on an activation that is
    the same on every calibration crop; say what that means instead of its traceback."""
    try:
        yield
    except ValueError as err:
        if "Too many bins for data range" not in str(err):
            raise
        raise ReidTraceError(
            f"{method.name} calibration failed: an activation of the model is constant over "
            "every calibration crop (an untrained or collapsed model, or identical crops)",
            hint="calibrate with --calibration-method minmax, or on more varied crops",
        ) from err


def _quantize(
    prep: Path,
    out: Path,
    reader: CropReader,
    method: CalibrationMethod,
    per_channel: bool,
    nodes: list[str],
    cache: Path,
    percentile: float = 99.999,
) -> None:
    if not nodes:  # everything FP32: the pre-processed model itself
        onnx.save(onnx.load(str(prep)), str(out))
        return
    reader.set_range(0, len(reader))
    with _quiet(), _constant_activation_hint(method):
        quantize_static(
            str(prep),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv", "Gemm", "MatMul", "Add", *sorted(_ACTIVATIONS)],
            nodes_to_quantize=nodes,
            per_channel=per_channel,
            reduce_range=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            calibration_cache_path=str(cache),
            # one batch per calibrator call: bounded memory for the histogram methods
            extra_options={"CalibStridedMinMax": 1, "CalibPercentile": percentile},
        )
    q = onnx.load(str(out))
    if _guard_float_layers(q):
        onnx.save(q, str(out))


def _session(path: Path, threads: int) -> ort.InferenceSession:
    """The session the embedder would build (``OnnxEmbedder``'s options)."""
    return OnnxEmbedder(path, threads=threads)._session


def _time_variants(
    variants: dict[str, Path], x: np.ndarray, threads: int, repeats: int
) -> dict[str, float]:
    """Fastest ms per batch of each variant. Runs are interleaved round-robin so that load from
    other processes on a shared machine falls on every variant alike, and the minimum is kept
    because contention only ever adds time: on the 2-core machine under a load average of 20,
    medians of 7 runs swung by 2x between variants that differ in one layer."""
    sessions = {k: _session(p, threads) for k, p in variants.items()}
    names = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    for k, s in sessions.items():  # warm-up: first runs allocate and pick kernels
        for _ in range(2):
            s.run(None, {names[k]: x})
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(max(1, repeats)):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, {names[k]: x})
            times[k].append((time.perf_counter() - t) * 1e3)
    return {k: min(v) for k, v in times.items()}


def _compare(
    src: Path, quant: Path, paths: Sequence[Path], stripped: bool, threads: int
) -> np.ndarray:
    """Per-crop cosine of the INT8 model's embeddings against the FP32 source's.

    When the flip was stripped (``stripped``), the INT8 model is flip-averaged by the embedder
    (``embed_crops(flip=True)``, the same function as the in-graph flip), so the cosine
    measures the quantization alone.
    """
    from reid.embed import read_image

    fp = OnnxEmbedder(src, threads=threads)
    q = OnnxEmbedder(quant, threads=threads)
    crops = [read_image(p) for p in paths]
    return np.sum(fp.embed_crops(crops) * q.embed_crops(crops, flip=stripped), axis=1)


def strip_flip_average(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a flip-averaged export (``reidtrace export --flip``) without the flip: one
    pass a crop, the network's own (unit-length) output as ``embeddings``.

    The export's pattern: ``Concat([images, Slice(images)], axis=0)`` feeds the network, and
    ``normalize(Slice(f, :n) + Slice(f, n:))`` makes the output. Anything else is refused.
    """
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    g = m.graph
    inp, out = g.input[0].name, g.output[0].name
    producer = {o: n for n in g.node for o in n.output}
    concat = next(
        (
            n
            for n in g.node
            if n.op_type == "Concat"
            and len(n.input) == 2
            and n.input[0] == inp
            and n.input[1] in producer
            and producer[n.input[1]].op_type == "Slice"
            and producer[n.input[1]].input[0] == inp
        ),
        None,
    )
    feats = _flip_tail_input(g, producer, out)
    if concat is None or feats is None:
        raise ReidTraceError(
            "the model's graph does not have the flip-averaging pattern of `reidtrace export "
            "--flip`",
            hint="quantize it with its flip kept (leave out --no-flip)",
        )
    for node in g.node:  # the network now reads the images directly
        for i, name in enumerate(node.input):
            if name == concat.output[0]:
                node.input[i] = inp
    for node in g.node:  # its own output becomes the model's output
        for i, name in enumerate(node.output):
            if name == feats:
                node.output[i] = out
    for node in g.node:
        if producer.get(out) is node:
            node.output[0] = "__flip_tail_dropped__"
    _prune(g)
    kept = [p for p in m.metadata_props if p.key != "flip_average"]
    del m.metadata_props[:]
    m.metadata_props.extend(kept)
    return m


def _flip_tail_input(graph: onnx.GraphProto, producer: dict, out: str) -> str | None:
    """The network output ``f`` in ``out = normalize(Slice(f) + Slice(f))``, else None."""
    node = producer.get(out)
    seen = 0
    while node is not None and node.op_type != "Add" and seen < 4:  # Div <- (ReduceL2, Clip)
        node = producer.get(node.input[0])
        seen += 1
    if node is None or node.op_type != "Add":
        return None
    slices = [producer.get(i) for i in node.input]
    if len(slices) != 2 or any(s is None or s.op_type != "Slice" for s in slices):
        return None
    if slices[0].input[0] != slices[1].input[0]:
        return None
    return slices[0].input[0]


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers the graph outputs no longer need (in place)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    vis = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(vis)


def compact_qdq(proto: onnx.ModelProto) -> int:
    """Drop bytes a QDQ file carries but no runtime needs; returns the zero points dropped.

    The quantizer writes a zero point for every stored INT8 weight and INT32 bias, always 0
    (symmetric weights), one per output channel: ``DequantizeLinear`` takes 0 when the input is
    absent, so the all-zero ones go (only where the quantized value is a stored INT8/INT32
    tensor: a ``QuantizeLinear``'s zero point also sets its output type, and activations have
    non-zero ones). ``value_info`` (shape annotations from ``quant_pre_process``) goes too: ONNX
    Runtime infers shapes when it loads the file. Denormal FP32 values (a dead channel's weight
    scale) become 0. Outputs are bit-identical and ONNX Runtime
    fuses the same QDQ groups (checked by ``tests/compression/test_quantize.py``); on the
    MobileNetV2 default it is 100 KB of 2.3 MB, what stood between its file and 4x smaller
    than the FP32 source.
    """
    inits = {i.name: i for i in proto.graph.initializer}
    stored = (onnx.TensorProto.INT8, onnx.TensorProto.INT32)
    dropped = 0
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) != 3:
            continue
        x, zp = inits.get(node.input[0]), inits.get(node.input[2])
        if x is None or zp is None or x.data_type not in stored:
            continue
        if np.any(onnx.numpy_helper.to_array(zp)):
            continue
        del node.input[2]
        dropped += 1
    used = {name for node in proto.graph.node for name in node.input}
    used |= {o.name for o in proto.graph.output}
    kept = [i for i in proto.graph.initializer if i.name in used]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    del proto.graph.value_info[:]
    # Denormal FP32 tensors (a dead channel's weight scale) cost x86 a microcode assist per
    # product; zero them as reid.models.export.flush_denormals does for FP32 exports (not
    # imported: that module needs torch, quantization does not).
    tiny = np.finfo(np.float32).tiny
    for init in proto.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        w = onnx.numpy_helper.to_array(init)
        small = (w != 0) & (np.abs(w) < tiny)
        if small.any():
            init.CopyFrom(onnx.numpy_helper.from_array(np.where(small, 0, w), init.name))
    return dropped
