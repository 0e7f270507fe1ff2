"""Calibration settings of the one-pass INT8 model compared by embedding cosine to FP32.

Usage::

    python benchmarks/quant_calibration.py --calibration MARKET --variants
        percentile:99.999:256,percentile:99.99:256,entropy::256,minmax::256 --out OUT.json

Each variant ``method:percentile:crops`` quantizes the FP32 source model with its flip averaging
stripped, everything INT8 (``--fp32-types none``), per-channel weights, and compares the
embeddings of ``--probe`` held-out crops of the calibration folder (none of them calibrates
any variant; never the test splits) with the FP32 model's. Prints and writes one row per variant.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from compression.calibration import CropReader, find_crops, sample_crops
from compression.quantize import (
    _ACTIVATIONS,
    METHODS,
    _guard_float_layers,
    _quiet,
    layer_types,
    strip_flip_average,
)
from reid.embed import OnnxEmbedder


def _embed(path: Path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = np.concatenate([sess.run(None, {name: x[i : i + 32]})[0] for i in range(0, len(x), 32)])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="reid/weights/source_fp32.onnx")
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--variants", required=True)
    ap.add_argument("--probe", type=int, default=256)
    ap.add_argument("--fp32-nodes", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    src = Path(args.model)
    contract = OnnxEmbedder(src, threads=2).contract
    proto = onnx.load(str(src))
    if any(p.key == "flip_average" and p.value == "1" for p in proto.metadata_props):
        proto = strip_flip_average(proto)
    crops = find_crops(args.calibration)
    keep = {n for n in args.fp32_nodes.split(",") if n}
    rows = []
    with tempfile.TemporaryDirectory(prefix="qcal-") as d:
        work = Path(d)
        onnx.save(proto, str(work / "fp32.onnx"))
        prep = work / "prep.onnx"
        with _quiet():
            quant_pre_process(str(work / "fp32.onnx"), str(prep))
        prep_proto = onnx.load(str(prep))
        kinds = layer_types(prep_proto)
        out_of = {o: n.name for n in prep_proto.graph.node for o in n.output}
        after_kept = {
            n.name
            for n in prep_proto.graph.node
            if n.op_type in _ACTIVATIONS and out_of.get(n.input[0]) in keep
        }
        nodes = [n for n in kinds if n not in keep and n not in after_kept]
        input_name = prep_proto.graph.input[0].name
        specs = [s.split(":") for s in args.variants.split(",")]
        used = {p for _, _, n in specs for p in sample_crops(crops, int(n), seed=0)}
        probe_paths = sample_crops([p for p in crops if p not in used], args.probe, seed=1)
        probe = CropReader(probe_paths, contract, input_name).images()
        ref = _embed(prep, probe)
        for method, pct, n in specs:
            spec = f"{method}:{pct}:{n}"
            calib = sample_crops(crops, int(n), seed=0)
            reader = CropReader(calib, contract, input_name)
            extra = {"CalibStridedMinMax": 1}
            if pct:
                extra["CalibPercentile"] = float(pct)
            out = work / "q.onnx"
            t = time.time()
            reader.set_range(0, len(reader))
            with _quiet():
                quantize_static(
                    str(prep), str(out), reader, quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv", "Gemm", "MatMul", "Add", *sorted(_ACTIVATIONS)],
                    nodes_to_quantize=nodes, per_channel=True, reduce_range=False,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=METHODS[method], extra_options=extra,
                )  # fmt: skip
            q = onnx.load(str(out))
            _guard_float_layers(q)
            onnx.save(q, str(out))
            cos = np.sum(_embed(out, probe) * ref, axis=1)
            row = {
                "variant": spec, "cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
                "fp32_nodes": len(keep), "seconds": round(time.time() - t, 1),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
