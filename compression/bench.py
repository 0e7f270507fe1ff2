"""``reidtrace bench extractor``: ReID extractors side by side, in one process, on this CPU.

Every row is timed the same way: ``threads`` intra-op threads (2 by default), each model at its
own input size, random input (speed does not depend on the pixels), warm-up runs first, then
the median of repeated runs: throughput at batch 32 (images a second) and latency at batch 1.
Rows:

- a ResNet-50 in PyTorch FP32 at 256x128, the usual thesis-style ReID baseline (random weights:
  speed does not need trained ones);
- the source model (the bundled ``source_fp32.onnx`` unless told otherwise) in PyTorch FP32, rebuilt
  from the ONNX file by ``reid.models.onnx_import``; flip averaging is kept when the file has
  it, so both source rows do the same work;
- the same source file in ONNX Runtime FP32;
- any further ONNX files (``models``): the INT8 file, later pruned and distilled ones. The CLI
  with no ``--models`` gives one, ``default``: the bundled default embedder (``default.onnx``,
  the INT8 compression of the source), so the headline is the shipped model against its source.

PyTorch rows run in their best configuration: eval mode, ``torch.inference_mode``, ``threads``
torch threads, and channels-last memory format when it measures faster. ONNX rows run through
the serving embedder (``reid.embed.OnnxEmbedder``, the session options ingestion uses).

Besides speed each row has GMACs a crop (convolutions and matrix products, the papers'
"Mult-Adds", flip passes included), parameters, file size and the peak resident memory the row
added (Linux ``VmHWM``, reset before each row); with a Market folder each ONNX row is also scored
with the Market protocol (``reid.evaluate.run.evaluate_model``). The headline compares one row
(by default the last ONNX file given) with the source model: throughput ratios against PyTorch
and ONNX Runtime FP32, the mAP drop, and how many times smaller the file is.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch.utils.flop_counter import FlopCounterMode

from reid.embed import OnnxEmbedder, source_model
from reid.errors import ReidTraceError

__all__ = ["BenchRow", "bench_extractor", "markdown_table", "onnx_cost", "parse_models"]

Progress = Callable[[str, int, int], None]
BASELINE = "resnet50"


@dataclass
class BenchRow:
    """One extractor's measurements (the JSON row)."""

    name: str
    backend: str  # "torch" or "onnxruntime"
    precision: str  # "fp32" or "int8"
    model: str  # the file, or the registry name of a PyTorch network
    input_size: list[int]
    passes: int  # forward passes a crop: 2 with flip averaging
    img_per_s: float
    latency_ms_b1: float
    gmacs: float
    params_m: float
    size_mb: float
    peak_mem_mb: float | None
    mAP: float | None = None
    rank1: float | None = None
    note: str = ""


def parse_models(spec: str) -> dict[str, Path]:
    """``name=path.onnx,name2=path2.onnx`` (a bare path is named after its file) -> rows."""
    out: dict[str, Path] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, _, raw = item.rpartition("=")
        path = Path(raw).expanduser()
        name = name.strip() or path.stem
        if path.suffix.lower() != ".onnx" or not path.is_file():
            raise ReidTraceError(
                f"model {raw!r} is not an .onnx file",
                hint="--models takes name=FILE.onnx pairs, comma-separated",
            )
        if name in out:
            raise ReidTraceError(f"two models named {name!r}", hint="give each row its own name")
        out[name] = path
    return out


def bench_extractor(
    *,
    source: str | Path | None = None,
    baseline: str | None = BASELINE,
    models: dict[str, Path] | None = None,
    data: str | Path | None = None,
    headline: str | None = None,
    batch: int = 32,
    threads: int = 2,
    repeats: int = 10,
    repeats_b1: int = 30,
    warmup: int = 2,
    torch_source: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure the rows (module docstring); ``{"rows": [...], "headline": {...}, "setup": {}}``.

    ``baseline``: a registry name, optionally ``NAME@HxW`` for another input size (None: no
    baseline row). ``source``: the FP32 ONNX source model (None: the bundled ``source_fp32.onnx``).
    ``torch_source=False`` leaves out the source's PyTorch row (only importable architectures
    can be rebuilt from ONNX; ``reidtrace compress`` times the ONNX files alone).
    """
    for label, v in (("batch", batch), ("threads", threads), ("repeats", repeats)):
        if v < 1:
            raise ReidTraceError(f"{label} must be >= 1, got {v}", hint="see --help")
    models = dict(models or {})
    if headline is not None and headline not in models:
        raise ReidTraceError(
            f"headline row {headline!r} is not one of --models",
            hint=f"choose one of {sorted(models) or ['(give --models name=FILE.onnx)']}",
        )
    src = Path(source) if source is not None else source_model()
    OnnxEmbedder(src, threads=1)  # validates the file before anything is timed
    if data is not None and not Path(data).is_dir():
        raise ReidTraceError(
            f"--data {str(data)!r} is not a folder", hint="pass a Market-format folder"
        )
    timing = dict(batch=batch, threads=threads, repeats=repeats, repeats_b1=repeats_b1)
    timing["warmup"] = warmup
    plan: list[tuple[str, Callable[[], BenchRow]]] = []
    if baseline:
        arch, size = _parse_baseline(baseline)
        plan.append((f"{arch}_torch_fp32", lambda: _torch_baseline(arch, size, **timing)))
    if torch_source:
        plan.append(("source_torch_fp32", lambda: _torch_source(src, **timing)))
    plan.append(("source_ort_fp32", lambda: _onnx_row("source_ort_fp32", src, **timing)))
    for name, path in models.items():
        plan.append((name, lambda name=name, path=path: _onnx_row(name, path, **timing)))
    rows: list[BenchRow] = []
    before = torch.get_num_threads()
    try:
        for i, (name, run) in enumerate(plan):
            if progress:
                progress("bench extractor", i, len(plan))
            gc.collect()
            with _peak_memory() as peak:
                row = run()
            row.name = name
            row.peak_mem_mb = peak()
            rows.append(row)
        if progress:
            progress("bench extractor", len(plan), len(plan))
    finally:
        torch.set_num_threads(before)
    if data is not None:
        _score(rows, Path(data), threads, progress)
    head = headline or (list(models)[-1] if models else None)
    return {
        "rows": [asdict(r) for r in rows],
        "headline": _headline(rows, head),
        "setup": {
            **timing,
            "cpu_count": os.cpu_count(),
            "onnxruntime": ort.__version__,
            "torch": torch.__version__.split("+")[0],
            "data": str(data) if data is not None else None,
        },
    }


def _parse_baseline(spec: str) -> tuple[str, tuple[int, int] | None]:
    from reid.models import list_models

    name, _, size = spec.partition("@")
    if name not in list_models():
        raise ReidTraceError(
            f"unknown baseline model {name!r}", hint=f"choose one of {', '.join(list_models())}"
        )
    if not size:
        return name, None
    m = re.fullmatch(r"(\d+)x(\d+)", size)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise ReidTraceError(f"bad input size {size!r} in {spec!r}", hint="e.g. resnet50@256x128")
    return name, (int(m[1]), int(m[2]))


# -- timing -------------------------------------------------------------------------------------


def _median_ms(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _speed(
    run: Callable[[np.ndarray], Any],
    size: tuple[int, int],
    *,
    batch: int,
    repeats: int,
    repeats_b1: int,
    warmup: int,
) -> tuple[float, float]:
    """(images a second at ``batch``, ms at batch 1) for ``run(x)`` on random input."""
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((batch, 3, *size), dtype=np.float32)
    x1 = xb[:1].copy()
    ms_b = _median_ms(lambda: run(xb), repeats, warmup)
    ms_1 = _median_ms(lambda: run(x1), repeats_b1, max(warmup, 3))
    return batch / (ms_b / 1e3), ms_1


@contextlib.contextmanager
def _peak_memory() -> Iterator[Callable[[], float | None]]:
    """Peak resident memory (MB) added while the block ran: the kernel's high-water mark
    (``VmHWM``), reset on entry through ``/proc/self/clear_refs``; None where unavailable."""
    result: list[float | None] = [None]
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        start = _status_kb("VmRSS")
    except OSError:
        start = None
    yield lambda: result[0]
    if start is not None:
        peak = _status_kb("VmHWM")
        result[0] = round((peak - start) / 1024, 1) if peak is not None else None


def _status_kb(key: str) -> int | None:
    m = re.search(rf"^{key}:\s+(\d+)", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(m[1]) if m else None


# -- PyTorch rows -------------------------------------------------------------------------------


def _torch_baseline(arch: str, size: tuple[int, int] | None, **timing: Any) -> BenchRow:
    from reid.models import create_model

    torch.manual_seed(0)
    model = create_model(arch).eval()
    return _torch_row(model, arch, size or model.info.input_size, "random weights", **timing)


def _torch_source(src: Path, **timing: Any) -> BenchRow:
    """The source ONNX model in PyTorch, rebuilt from the file (``reid.models.onnx_import``),
    with flip averaging when the file has it, so both source rows do the same work."""
    from reid.models import model_info
    from reid.models.export import FlipAverage
    from reid.models.onnx_import import import_onnx

    emb = OnnxEmbedder(src, threads=1)
    meta = emb._session.get_modelmeta().custom_metadata_map
    size = (emb.contract.height, emb.contract.width)
    del emb
    # the importer checks itself against the file at the registry's input size; a file
    # exported at another size (export --input-size) cannot take that input
    same_size = tuple(model_info(meta.get("arch", "")).input_size) == size
    model, _ = import_onnx(src, verify=same_size)
    model = model.eval()
    if meta.get("flip_average") == "1":
        model = FlipAverage(model).eval()
    return _torch_row(model, str(src), size, f"imported from {src.name}", **timing)


def _torch_row(
    model: torch.nn.Module, what: str, size: tuple[int, int], note: str, **timing: Any
) -> BenchRow:
    torch.set_num_threads(timing["threads"])
    params = sum(p.numel() for k, p in model.named_parameters() if "classifier." not in k)
    nbytes = sum(
        t.numel() * t.element_size()
        for k, t in model.state_dict().items()
        if "classifier." not in k
    )
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, *size))
        gmacs = counter.get_total_flops() / 2e9

        def runner(channels_last: bool) -> Callable[[np.ndarray], Any]:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            m = model.to(memory_format=fmt)

            def run(x: np.ndarray) -> Any:
                with torch.inference_mode():
                    return m(torch.from_numpy(x).contiguous(memory_format=fmt))

            return run

        # channels-last helps some CPU kernels and hurts others: measure, keep the faster
        probe = np.zeros((timing["batch"], 3, *size), np.float32)
        ms = {cl: _median_ms(lambda cl=cl: runner(cl)(probe), 3, 1) for cl in (False, True)}
        best = min(ms, key=ms.__getitem__)
        speed = {k: v for k, v in timing.items() if k != "threads"}
        img_s, lat = _speed(runner(best), size, **speed)
    passes = 2 if type(model).__name__ == "FlipAverage" else 1
    return BenchRow(
        name="",
        backend="torch",
        precision="fp32",
        model=what,
        input_size=list(size),
        passes=passes,
        img_per_s=round(img_s, 1),
        latency_ms_b1=round(lat, 2),
        gmacs=round(gmacs, 4),
        params_m=round(params / 1e6, 3),
        size_mb=round(nbytes / 1e6, 2),
        peak_mem_mb=None,
        note=f"{note}; {'channels_last' if best else 'contiguous'}",
    )


# -- ONNX rows ----------------------------------------------------------------------------------


def _onnx_row(name: str, path: Path, **timing: Any) -> BenchRow:
    emb = OnnxEmbedder(path, threads=timing["threads"], batch_size=timing["batch"])
    meta = emb._session.get_modelmeta().custom_metadata_map
    size = (emb.contract.height, emb.contract.width)
    speed = {k: v for k, v in timing.items() if k != "threads"}
    img_s, lat = _speed(emb.forward, size, **speed)
    gmacs, params = onnx_cost(path)
    return BenchRow(
        name=name,
        backend="onnxruntime",
        precision=meta.get("precision", "fp32"),
        model=str(path),
        input_size=list(size),
        passes=2 if meta.get("flip_average") == "1" else 1,
        img_per_s=round(img_s, 1),
        latency_ms_b1=round(lat, 2),
        gmacs=round(gmacs, 4),
        params_m=round(params / 1e6, 3),
        size_mb=round(path.stat().st_size / 1e6, 2),
        peak_mem_mb=None,
    )


def onnx_cost(path: str | Path) -> tuple[float, int]:
    """(GMACs of one crop, parameters) of an ONNX model, FP32 or QDQ INT8.

    MACs are counted for Conv (output elements x input channels per group x kernel area) and
    Gemm/MatMul (output elements x inner size), as ``FlopCounterMode`` counts the PyTorch rows.
    Shapes come from running the graph once on a zero crop with every such output exposed
    (the flip head doubles the batch inside, so flip passes count). Parameters: elements of the
    weight and bias tensors, not quantization scales and zero points. Hand-written because no
    installed library counts both FP32 and QDQ graphs.
    """
    proto = onnx.load(str(path))
    g = proto.graph
    inits = {i.name: tuple(i.dims) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}

    def weight_shape(name: str) -> tuple[int, ...] | None:
        if name in inits:
            return inits[name]
        node = producer.get(name)  # QDQ: the weight goes through DequantizeLinear
        if node is not None and node.op_type == "DequantizeLinear":
            return inits.get(node.input[0])
        if node is not None and node.op_type == "Constant":
            return tuple(node.attribute[0].t.dims)
        return None

    counted = [n for n in g.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    existing = {o.name for o in g.output}
    for n in counted:
        if n.output[0] not in existing:
            g.output.append(onnx.ValueInfoProto(name=n.output[0]))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), opts, ["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    h, w = (d if isinstance(d, int) else None for d in inp.shape[2:4])
    meta = sess.get_modelmeta().custom_metadata_map
    h = int(meta.get("input_height", h or 0))
    w = int(meta.get("input_width", w or 0))
    names = [o.name for o in sess.get_outputs()]
    outs = dict(
        zip(names, sess.run(None, {inp.name: np.zeros((1, 3, h, w), np.float32)}), strict=True)
    )
    macs = 0
    for n in counted:
        wshape = weight_shape(n.input[1])
        out = outs[n.output[0]].shape
        if n.op_type == "Conv" and wshape is not None:
            macs += int(np.prod(out)) * int(np.prod(wshape[1:]))
        elif wshape is not None:
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            inner = wshape[-1] if (n.op_type == "Gemm" and trans_b) else wshape[0]
            macs += int(np.prod(out)) * int(inner)
    scale_inputs = {
        i
        for n in g.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear")
        for i in n.input[1:]
    }
    params = sum(
        int(np.prod(d)) for name, d in inits.items() if name not in scale_inputs and len(d) >= 1
    )
    return macs / 1e9, params


# -- accuracy and the headline ------------------------------------------------------------------


def _score(rows: Sequence[BenchRow], data: Path, threads: int, progress: Progress | None) -> None:
    from reid.evaluate.run import evaluate_model

    for row in rows:
        if row.backend != "onnxruntime":
            continue
        r = evaluate_model(data, row.model, threads=threads, progress=progress)
        row.mAP, row.rank1 = round(r["mAP"], 2), round(r["rank1"], 2)


def _headline(rows: Sequence[BenchRow], name: str | None) -> dict[str, Any] | None:
    by = {r.name: r for r in rows}
    if name is None or name not in by:
        return None
    head, ort32, torch32 = by[name], by.get("source_ort_fp32"), by.get("source_torch_fp32")

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    base = next((r for r in rows if r.name.endswith("_torch_fp32") and r is not torch32), None)
    drop = None
    if ort32 is not None and ort32.mAP is not None and head.mAP is not None:
        drop = round(ort32.mAP - head.mAP, 2)
    return {
        "model": name,
        "speedup_vs_torch_fp32": ratio(head.img_per_s, torch32 and torch32.img_per_s),
        "speedup_vs_ort_fp32": ratio(head.img_per_s, ort32 and ort32.img_per_s),
        "speedup_vs_baseline": ratio(head.img_per_s, base and base.img_per_s),
        "latency_speedup_vs_ort_fp32": ratio(ort32 and ort32.latency_ms_b1, head.latency_ms_b1),
        "size_ratio_vs_source": ratio(ort32 and ort32.size_mb, head.size_mb),
        "map_drop": drop,
    }


def markdown_table(report: dict[str, Any]) -> str:
    """The rows as a markdown table and the headline ratios as one line."""
    head = [
        "model", "backend", "precision", "input", "passes", "img/s (b32)", "ms (b1)",
        "GMACs", "params (M)", "size (MB)", "peak mem (MB)", "mAP", "rank-1",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | --- | --- |" + " ---: |" * 9]

    def cell(v: Any) -> str:
        return "-" if v is None else str(v)

    for r in report["rows"]:
        cells = [
            r["name"], r["backend"], r["precision"], "x".join(map(str, r["input_size"])),
            r["passes"], r["img_per_s"], r["latency_ms_b1"], r["gmacs"], r["params_m"],
            r["size_mb"], r["peak_mem_mb"], r["mAP"], r["rank1"],
        ]  # fmt: skip
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    h = report.get("headline")
    if h:
        parts = [f"{k} {v}" for k, v in h.items() if k != "model"]
        lines.append(f"\nheadline {h['model']}: " + ", ".join(parts))
    s = report["setup"]
    lines.append(
        f"batch {s['batch']}, {s['threads']} threads, median of {s['repeats']} (batch) and "
        f"{s['repeats_b1']} (batch 1) runs after {s['warmup']} warm-up runs"
    )
    return "\n".join(lines)
