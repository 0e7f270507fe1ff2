"""The report of a ``reidtrace compress`` run: ``report.json``, ``report.md`` and ``pareto.png``.

One row per model of the chain (the source, pruned, distilled, INT8), all ONNX files: GMACs a
crop and parameters counted from the graph (``compression.bench.onnx_cost``, flip passes
included), file size, the evaluate stage's mAP / rank-1, and speed measured the way ``reidtrace
bench extractor`` measures it (serving embedder sessions, batch 32 throughput, batch-1 latency,
``threads`` intra-op threads). Speed on a machine busier than its core count is labelled as
such: accuracy does not depend on load, timings do.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from compression.bench import bench_extractor, onnx_cost

__all__ = ["build_report", "markdown", "write_report"]

REPORT_FORMAT = "reidtrace-compress-report"
VERSION = 1
BATCH = 32
UNTRAINED_NOTE = "source untrained: mAP drop not meaningful"
Progress = Callable[[str, int, int], None]
ROW_KEYS = (
    "stage", "file", "precision", "passes", "gmacs", "params_m", "size_mb", "mAP", "rank1",
    "img_per_s", "latency_ms_b1",
)  # fmt: skip


def _load() -> tuple[float, int]:
    """(1-minute load average, CPU count); load NaN where the OS does not report it."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return round(load, 2), os.cpu_count() or 1


def _speed(
    rows: Sequence[tuple[str, Path]], threads: int, repeats: int, progress: Progress | None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``{stage: bench row}`` and the setup, timed in one process like ``bench extractor``."""
    load_before, cpus = _load()
    setup: dict[str, Any] = {"measured": repeats > 0, "batch": BATCH, "threads": threads}
    setup.update(repeats=repeats, repeats_b1=3 * repeats, cpu_count=cpus)
    if repeats == 0:
        setup.update(load_average=load_before, loaded=None, note="speed not measured")
        return {}, setup
    (source_stage, source), *rest = rows
    report = bench_extractor(
        source=source,
        baseline=None,
        models={stage: path for stage, path in rest},
        batch=BATCH,
        threads=threads,
        repeats=repeats,
        repeats_b1=3 * repeats,
        torch_source=False,
        progress=progress,
    )
    by_name = {r["name"]: r for r in report["rows"]}
    by_name[source_stage] = by_name.pop("source_ort_fp32")
    load = max(load_before, _load()[0])
    loaded = bool(load >= cpus)
    note = (
        f"measured under a load average of {load} on {cpus} CPUs: other processes shared "
        "the cores, so speeds are low and noisy (compare rows of this table only)"
        if loaded
        else f"load average {load} on {cpus} CPUs"
    )
    setup.update(load_average=load, loaded=loaded, note=note)
    return by_name, setup


def build_report(
    *,
    args: dict[str, Any],
    stages: dict[str, Any],
    rows: Sequence[tuple[str, Path]],
    out: Path,
    threads: int,
    repeats: int,
    source_untrained: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report document (stable keys, ``ROW_KEYS`` per row) from the finished stages.

    ``source_untrained``: the source checkpoint is marked as never trained (random weights);
    the report says its mAP drop means nothing rather than leave a reader to spot the
    near-chance mAP.
    """
    speed, setup = _speed(rows, threads, repeats, progress)
    scores = stages["evaluate"]["scores"]
    table = []
    for stage, path in rows:
        gmacs, params = onnx_cost(path)
        bench = speed.get(stage, {})
        try:
            name = str(path.relative_to(out))
        except ValueError:  # the source file outside the run folder
            name = str(path)
        precision = "int8" if stage == "int8" else "fp32"
        meta = _metadata(path)
        table.append(
            {
                "stage": stage,
                "file": name,
                "precision": precision,
                "passes": 2 if meta.get("flip_average") == "1" else 1,
                "gmacs": round(gmacs, 4),
                "params_m": round(params / 1e6, 3),
                "size_mb": round(path.stat().st_size / 1e6, 2),
                "mAP": round(scores[stage]["mAP"], 2),
                "rank1": round(scores[stage]["rank1"], 2),
                "img_per_s": bench.get("img_per_s"),
                "latency_ms_b1": bench.get("latency_ms_b1"),
            }
        )
    first, last = table[0], table[-1]

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    plan = stages["plan"]
    quant = stages["quantize"]
    return {
        "format": REPORT_FORMAT,
        "version": VERSION,
        "args": args,
        "flip": bool(stages["export"]["flip"]),
        "source_untrained": bool(source_untrained),
        "plan": {
            "budget": args["budget"],
            "macs": plan["macs"],
            "base_macs": plan["base_macs"],
            "macs_ratio": round(plan["macs"] / plan["base_macs"], 4),
        },
        "distill": {  # teacher_flip from the arguments when the stage predates the option
            "teacher_flip": bool(args.get("teacher_flip")),
            **{k: v for k, v in stages["distill"].items() if k != "seconds"},
        },
        "quantization": {k: v for k, v in quant.items() if k not in ("seconds", "file")},
        "rows": table,
        "summary": {
            "map_drop": round(first["mAP"] - last["mAP"], 2),
            "rank1_drop": round(first["rank1"] - last["rank1"], 2),
            "speedup": ratio(last["img_per_s"], first["img_per_s"]),
            "size_ratio": ratio(first["size_mb"], last["size_mb"]),
            "gmacs_ratio": ratio(first["gmacs"], last["gmacs"]),
            "note": UNTRAINED_NOTE if source_untrained else None,
        },
        "speed": setup,
        "stage_seconds": {k: v.get("seconds") for k, v in stages.items()},
        "files": {"model": "model_int8.onnx", "plan": "plan.json", "report": "report.md",
                  "pareto": "pareto.png"},
    }  # fmt: skip


def _metadata(path: Path) -> dict[str, str]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def markdown(report: dict[str, Any]) -> str:
    """``report.md``: the rows as a table, then the plan, quantization and speed setup."""
    a, p, s = report["args"], report["plan"], report["speed"]
    head = [
        "stage", "file", "precision", "passes", "GMACs", "params (M)", "size (MB)", "mAP",
        "rank-1", "img/s (b32)", "ms (b1)",
    ]  # fmt: skip
    distill = (
        f"distillation {a['distill_iters']} batches "
        f"({', '.join(a['distill_terms']) or 'no teacher'}"
        f"{'; teacher flip-averaged' if a.get('teacher_flip') and a['distill_terms'] else ''})"
        if a["distill_iters"] > 0
        else "no distillation (--distill-iters 0)"
    )
    lines = [
        f"# reidtrace compress: {a['model']}",
        "",
        f"Budget `{p['budget']}`: plan {p['macs'] / 1e6:.1f}M of {p['base_macs'] / 1e6:.1f}M MACs "
        f"a pass ({p['macs_ratio']:.3f}x), criterion {a['criterion']}; {distill}; "
        f"flip averaging {'kept' if report['flip'] else 'stripped'}. Evaluated on `{a['data']}` "
        "(Market protocol, percent).",
        "",
        "| " + " | ".join(head) + " |",
        "| --- | --- | --- | ---: |" + " ---: |" * 7,
    ]

    def cell(v: Any) -> str:
        return "-" if v is None else str(v)

    for r in report["rows"]:
        lines.append("| " + " | ".join(cell(r[k]) for k in ROW_KEYS) + " |")
    q, sm = report["quantization"], report["summary"]
    lines += [
        "",
        f"Source to INT8: mAP {cell(sm['map_drop'])} and rank-1 {cell(sm['rank1_drop'])} points "
        f"lower, {cell(sm['speedup'])}x the throughput, {cell(sm['size_ratio'])}x smaller file, "
        f"{cell(sm['gmacs_ratio'])}x fewer MACs.",
        *(
            [
                f"**{UNTRAINED_NOTE}**: the checkpoint's metadata marks its weights as never "
                "trained (random init), so mAP, rank-1 and the INT8 cosine score random "
                "features; only MACs, parameters, size and speed carry over to a trained model."
            ]
            if report.get("source_untrained")
            else []
        ),
        f"INT8 layer types {', '.join(q['int8_types']) or '-'}; FP32 "
        f"{', '.join(q['fp32_types']) or '-'}; cosine to the FP32 model mean "
        f"{q['cosine_mean']:.4f}, min {q['cosine_min']:.4f}.",
        f"Speed: batch {s['batch']}, {s['threads']} threads, median of {s['repeats']} runs "
        f"(batch 1: {s['repeats_b1']}); {s['note']}.",
        "",
    ]
    return "\n".join(lines)


def _pareto(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    measured = all(r["img_per_s"] for r in rows)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    xs = [r["img_per_s"] if measured else r["gmacs"] for r in rows]
    ys = [r["mAP"] for r in rows]
    ax.plot(xs, ys, ":", color="0.6", label="chain order", zorder=1)
    ax.scatter(xs, ys, color="tab:blue", zorder=2)
    ax.legend(loc="best", fontsize=8)
    for x, y, r in zip(xs, ys, rows, strict=True):
        ax.annotate(r["stage"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=9)
    if measured:
        ax.set_xlabel(f"images/s (batch {report['speed']['batch']})")
    else:
        ax.set_xlabel("GMACs a crop (speed not measured)")
        ax.invert_xaxis()
    ax.set_ylabel("mAP (%)")
    title = "reidtrace compress: speed vs accuracy"
    if report["speed"].get("loaded"):
        title += f"\n(speed under load average {report['speed']['load_average']})"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then a rename: never half a file
    (not mkstemp: its 0600 mode would survive the rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_report(out: Path, report: dict[str, Any]) -> None:
    """``report.json``, ``report.md`` and ``pareto.png`` in ``out``, each written atomically."""
    write_atomic(out / "pareto.png", lambda p: _pareto(report, p))
    write_atomic(out / "report.md", lambda p: p.write_text(markdown(report)))
    text = json.dumps(report, indent=1, sort_keys=True, default=str) + "\n"
    write_atomic(out / "report.json", lambda p: p.write_text(text))
