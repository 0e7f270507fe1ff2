"""Per-node INT8 sensitivity of a one-pass ReID model: which quantized nodes cost the most.

For the FP32 source model with its flip averaging stripped, quantized like ``reidtrace quantize
--no-flip`` (percentile ranges, per-channel weights), every quantizable compute node (conv or
residual add, with the ReLU6 that follows it) is left in FP32 alone, and the embeddings of
held-out crops of the calibration folder (never the test splits) are compared with the FP32
model's. A node's *gain* is how much of the all-INT8 model's embedding error (1 - cosine) goes
away when it stays FP32. Then the top-k nodes are kept FP32 together, k = 0..--topk.

    PYTHONPATH=. python benchmarks/quant_sensitivity.py --calibration /tmp/cd_cal/market \
        --out /tmp/cd_out/sensitivity.json
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
from onnxruntime.quantization.shape_inference import quant_pre_process

from compression.calibration import CropReader, find_crops, sample_crops
from compression.quantize import (
    _ACTIVATIONS,
    METHODS,
    _quantize,
    _quiet,
    layer_types,
    strip_flip_average,
)
from reid.embed import OnnxEmbedder


def _embed(path: Path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(
        str(path), opts, providers=["CPUExecutionProvider"], disabled_optimizers=NO_WBQ
    )
    name = sess.get_inputs()[0].name
    out = np.concatenate([sess.run(None, {name: x[i : i + 32]})[0] for i in range(0, len(x), 32)])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


NO_WBQ = ["WeightBiasQuantization"]
"""An FP32 conv reading a DequantizeLinear output directly gets its weights quantized per
tensor by this ONNX Runtime optimisation at load; off here, so a node left FP32 really is."""


def _fp32_set(kinds: dict[str, str], producer: dict, ops: dict, keep: set[str]) -> list[str]:
    """Nodes to quantize: all but ``keep`` and the activation right after each kept node (the
    activation in front of a kept node stays INT8, as fused into the conv before it)."""
    drop = set(keep)
    for name, op in ops.items():
        if op in _ACTIVATIONS and name in kinds and producer.get(name) in keep:
            drop.add(name)
    return [n for n in kinds if n not in drop]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="reid/weights/source_fp32.onnx")
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--crops", type=int, default=256)
    ap.add_argument("--probe", type=int, default=256, help="held-out calibration-folder crops")
    ap.add_argument("--method", default="percentile")
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=None, help="calibration ranges JSON (reused if present)")
    args = ap.parse_args()

    src = Path(args.model)
    contract = OnnxEmbedder(src, threads=2).contract
    proto = onnx.load(str(src))
    if any(p.key == "flip_average" and p.value == "1" for p in proto.metadata_props):
        proto = strip_flip_average(proto)
    crops = find_crops(args.calibration)
    calib = sample_crops(crops, args.crops, seed=0)
    rest = [p for p in crops if p not in set(calib)]
    probe_paths = sample_crops(rest, args.probe, seed=1)
    rows: dict = {"model": str(src), "method": args.method, "crops": len(calib)}
    with tempfile.TemporaryDirectory(prefix="qsens-") as d:
        work = Path(d)
        fp32 = work / "fp32.onnx"
        onnx.save(proto, str(fp32))
        prep = work / "prep.onnx"
        with _quiet():
            quant_pre_process(str(fp32), str(prep))
        prep_proto = onnx.load(str(prep))
        kinds = layer_types(prep_proto)
        ops = {n.name: n.op_type for n in prep_proto.graph.node}
        compute = [n.name for n in prep_proto.graph.node if n.name in kinds]
        compute = [n for n in compute if ops[n] not in _ACTIVATIONS]
        input_name = prep_proto.graph.input[0].name
        reader = CropReader(calib, contract, input_name)
        probe = CropReader(probe_paths, contract, input_name).images()
        cache = Path(args.cache) if args.cache else work / "ranges.json"
        out_of = {o: n for n in prep_proto.graph.node for o in n.output}
        producer = {
            n.name: out_of[n.input[0]].name
            for n in prep_proto.graph.node
            if n.input and n.input[0] in out_of
        }
        ref = _embed(prep, probe)

        def variant(fp32_nodes: set[str], tag: str) -> np.ndarray:
            path = work / f"{tag}.onnx"
            nodes = _fp32_set(kinds, producer, ops, fp32_nodes)
            _quantize(prep, path, reader, METHODS[args.method], True, nodes, cache)
            cos = np.sum(_embed(path, probe) * ref, axis=1)
            path.unlink()
            return cos

        t = time.time()
        base = variant(set(), "all")
        rows["all_int8"] = {"cos_mean": float(base.mean()), "cos_min": float(base.min())}
        print(f"all INT8: cos mean {base.mean():.5f} min {base.min():.5f} ({time.time() - t:.0f}s)")
        err0 = 1 - base.mean()
        per = []
        for i, name in enumerate(compute):
            cos = variant({name}, f"n{i}")
            gain = (err0 - (1 - cos.mean())) / err0
            per.append(
                {
                    "node": name,
                    "type": kinds[name],
                    "cos_mean": float(cos.mean()),
                    "cos_min": float(cos.min()),
                    "gain": float(gain),
                }
            )
            print(f"{i:3d} {kinds[name]:15s} {name:60s} {cos.mean():.5f} gain {gain:+.3f}")
        per.sort(key=lambda r: -r["gain"])
        rows["per_node"] = per
        topk = []
        for k in range(1, args.topk + 1):
            keep = {r["node"] for r in per[:k]}
            cos = variant(keep, f"top{k}")
            topk.append({"k": k, "cos_mean": float(cos.mean()), "cos_min": float(cos.min())})
            print(f"top{k}: cos mean {cos.mean():.5f} min {cos.min():.5f}")
        rows["topk"] = topk
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
