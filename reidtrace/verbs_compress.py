"""``reidtrace compress``, ``quantize`` and ``bench extractor``: run the whole compression
chain, make the INT8 embedder, and measure extractors side by side (``compression/``, needs the
train extra: torch and onnx).

Verb bodies import ``compression`` lazily, so ``reidtrace --help`` loads neither torch nor
ONNX Runtime, and a serving install without torch gets a one-line error naming the extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from reid.errors import ReidTraceError
from reidtrace.app import bench_app, friendly_errors, progress_bar

__all__ = ["register"]


def _needs_extra(err: ModuleNotFoundError) -> ReidTraceError:
    return ReidTraceError(
        f"this verb needs {err.name}, which is not installed",
        hint="install the training extra: pip install 'reidtrace[train]'",
    )


SOURCE_WORDS = ("", "default", "source")
"""Words for the bundled FP32 source model (``source_fp32.onnx``): what compression starts
from. "default" keeps meaning it here, because the default embedder is its INT8 compression."""


def _source(model: str | None) -> Path:
    from reid.embed import source_model

    if model is None or model.strip().lower() in SOURCE_WORDS:
        return source_model()
    path = Path(model).expanduser()
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise ReidTraceError(
            f"model {model!r} is not an .onnx file",
            hint="pass default or source (the bundled FP32 model) or an FP32 file from "
            "`reidtrace export`",
        )
    return path


def _extractor_rows(models: str) -> dict[str, Path]:
    """``--models`` as rows; without it, the bundled default embedder (the shipped INT8 file)
    is the one row compared with the source, so ``bench extractor`` alone gives the headline."""
    from compression.bench import parse_models
    from reid.embed import default_model

    rows = parse_models(models)
    return rows or {"default": default_model()}


def _terms(spec: str) -> tuple[str, ...]:
    key = spec.strip().lower()
    if key == "all":
        return ("logit", "feature", "embed", "relational")
    if key in ("none", ""):
        return ()
    return tuple(t.strip() for t in key.split(",") if t.strip())


def _ratios(spec: str) -> tuple[float, ...]:
    try:
        return tuple(float(r) for r in spec.split(",") if r.strip())
    except ValueError as err:
        raise ReidTraceError(
            f"cannot read --ratios {spec!r}", hint="comma-separated fractions, e.g. 0.5,0.9"
        ) from err


def register(app: typer.Typer) -> None:
    """Add ``compress``, ``quantize`` and ``bench extractor`` to the ``reidtrace`` app."""

    @app.command()
    def compress(
        model: str = typer.Option(
            ...,
            "--model",
            help="The trained model: default or source (the bundled FP32 model the default "
            "embedder was compressed from), an FP32 ONNX export or a `reidtrace train` "
            "checkpoint (.pt).",
        ),
        data: Path = typer.Option(
            ...,
            "--data",
            help="Market-format folder: bounding_box_train/ for pruning samples, distillation "
            "and calibration; query/ + bounding_box_test/ for evaluation.",
        ),
        budget: str = typer.Option(
            ...,
            "--budget",
            help="macs=0.5 (fraction of the source's MACs), gmacs=0.1, latency=3ms (batch 1, "
            "measured on this CPU), or 0.5x / 93M / 8ms; or keep:GROUP=N,GROUP=N (exactly those "
            "widths, other groups whole; no sensitivity measurement, no search).",
        ),
        out: Path = typer.Option(..., "--out", help="Run folder (resumable)."),
        calibration: Path | None = typer.Option(
            None, "--calibration", help="INT8 calibration crops (default: --data's train split)."
        ),
        criterion: str = typer.Option(
            "thinet", "--criterion", help="Channel choice: thinet (with refit), l1 or l2."
        ),
        distill_iters: int = typer.Option(
            400,
            "--distill-iters",
            help="Distillation batches of 32 (0 skips; 400 took 10 minutes on a quiet 2-core CPU).",
        ),
        distill_terms: str = typer.Option(
            "all",
            "--distill-terms",
            help="all, none (plain fine-tuning) or a list of logit, feature, embed, relational.",
        ),
        flip: bool = typer.Option(
            True,
            "--flip/--no-flip",
            help="Keep flip averaging in the exported models (2 passes a crop; see "
            "docs/compression.md).",
        ),
        teacher_flip: bool | None = typer.Option(
            None,
            "--teacher-flip/--no-teacher-flip",
            help="Distil from the teacher's flip-averaged embedding [default: on with "
            "--no-flip when the source ONNX file flip-averages (default/source), else off]. "
            "Excludes the feature term (dropped from `all`).",
        ),
        lr: float = typer.Option(
            1e-4, "--lr", help="Distillation learning rate of the network (its new head: 1e-3)."
        ),
        ratios: str = typer.Option(
            "0.25,0.5,0.75,0.9",
            "--ratios",
            help="Pruning ratios each group's sensitivity is measured at.",
        ),
        samples: int = typer.Option(
            32, "--samples", help="Training crops for ThiNet's refit and the sensitivity proxy."
        ),
        calibration_crops: int = typer.Option(
            256, "--calibration-crops", help="INT8 calibration crops."
        ),
        bias_crops: int = typer.Option(
            64, "--bias-crops", help="Calibration crops the INT8 bias correction averages over."
        ),
        fp32_types: str = typer.Option(
            "auto",
            "--fp32-types",
            help="Layer types kept FP32 in INT8: auto (timed on this CPU), none, or a list.",
        ),
        calibration_method: str = typer.Option(
            "percentile", "--calibration-method", help="INT8 ranges: percentile, minmax, entropy."
        ),
        bench_repeats: int = typer.Option(
            10, "--bench-repeats", help="Timed runs per model for the report's speed (0: none)."
        ),
        threads: int = typer.Option(2, "--threads", help="Torch and ONNX Runtime threads."),
        seed: int = typer.Option(0, "--seed", help="Seed of sampling and fine-tuning."),
        device: str = typer.Option(
            "auto", "--device", help="Distillation device: auto, cpu or cuda."
        ),
        force: bool = typer.Option(
            False, "--force", help="Restart a run folder that holds other arguments."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Compress a ReID model under a budget: plan, prune, distil, export, quantize,
        evaluate, report. Rerunning the same command resumes at the first unfinished stage."""
        # progress stays on stderr with --json too: the run takes many minutes, and stdout
        # still carries exactly one JSON document
        with friendly_errors(as_json), progress_bar() as update:
            try:
                from compression.compress import CompressConfig
                from compression.compress import compress as run
            except ModuleNotFoundError as err:
                if err.name not in ("torch", "onnx", "torch_pruning", "torchreid"):
                    raise
                raise _needs_extra(err) from err
            cfg = CompressConfig(
                model=model,
                data=data,
                budget=budget,
                out=out,
                calibration=calibration,
                criterion=criterion.strip().lower(),
                ratios=_ratios(ratios),
                samples=samples,
                distill_iters=distill_iters,
                distill_terms=_terms(distill_terms),
                flip=flip,
                teacher_flip=teacher_flip,
                lr=lr,
                calibration_crops=calibration_crops,
                bias_crops=bias_crops,
                fp32_types=fp32_types,
                calibration_method=calibration_method,
                bench_repeats=bench_repeats,
                threads=threads,
                seed=seed,
                device=device,
                force=force,
            )
            report = run(cfg, progress=update)
        if as_json:
            typer.echo(json.dumps(report, sort_keys=True))
            return
        from compression.chain_report import markdown

        typer.echo(markdown(report))
        typer.echo(f"wrote {out / 'model_int8.onnx'} (report: {out / 'report.md'})")

    @app.command()
    def quantize(
        calibration: Path = typer.Option(
            ...,
            "--calibration",
            help="Crops of the training domain: a Market folder (its bounding_box_train/ is "
            "used) or any folder of crops.",
        ),
        out: Path = typer.Option(..., "--out", help="The INT8 ONNX file to write."),
        model: str = typer.Option(
            "default",
            "--model",
            help="The FP32 ONNX model: default or source (the bundled FP32 source model) or "
            "FILE.onnx.",
        ),
        method: str = typer.Option(
            "percentile", "--method", help="Activation ranges: minmax, entropy or percentile."
        ),
        percentile: float = typer.Option(
            99.999,
            "--percentile",
            help="With --method percentile: which percentile of each "
            "activation's histogram bounds its range.",
        ),
        crops: int = typer.Option(256, "--crops", min=1, help="Calibration crops (sampled)."),
        fp32_types: str = typer.Option(
            "auto",
            "--fp32-types",
            help="Layer types kept FP32: auto (those slower in INT8 on this CPU, timed), none, "
            "or a list of conv, depthwise_conv, pointwise_conv, residual_add, linear.",
        ),
        fp32_nodes: str = typer.Option(
            "", "--fp32-nodes", help="Node names kept FP32 whatever their type, comma-separated."
        ),
        flip: bool | None = typer.Option(
            None,
            "--flip/--no-flip",
            help="Keep or strip the flip averaging of the graph (2 passes a crop) [default: "
            "as the source].",
        ),
        per_channel: bool = typer.Option(
            True, "--per-channel/--per-tensor", help="Weight scales per output channel."
        ),
        bias_correction: bool = typer.Option(
            True,
            "--bias-correction/--no-bias-correction",
            help="Move each INT8 conv's bias so its mean output on calibration crops matches "
            "FP32 (bias values only; no speed cost).",
        ),
        bias_crops: int = typer.Option(
            64, "--bias-crops", min=1, help="Calibration crops the bias correction averages over."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Quantize an ONNX ReID model to static INT8 (QDQ), calibrated on real crops; the
        file keeps the model's input contract and runs in the same embedder."""
        with friendly_errors(as_json), progress_bar(not as_json) as update:
            try:
                from compression.quantize import quantize_onnx
            except ModuleNotFoundError as err:
                if err.name not in ("torch", "onnx"):
                    raise
                raise _needs_extra(err) from err
            report = quantize_onnx(
                _source(model),
                out,
                calibration,
                method=method,
                percentile=percentile,
                num_crops=crops,
                fp32_types=fp32_types,
                fp32_nodes=[n.strip() for n in fp32_nodes.split(",") if n.strip()],
                flip=flip,
                per_channel=per_channel,
                bias_correction=bias_correction,
                bias_crops=bias_crops,
                progress=update,
            ).as_dict()
        if as_json:
            typer.echo(json.dumps(report, sort_keys=True))
            return
        mb = report["size_bytes"] / 1e6
        typer.echo(
            f"wrote {report['out']} ({mb:.1f} MB, source {report['source_size_bytes'] / 1e6:.1f}"
            f" MB): {report['method']} ranges from {report['calibration_crops']} crops, "
            f"{'flip kept' if report['flip'] else 'one pass a crop'}"
        )
        typer.echo(f"INT8 layer types  {', '.join(report['int8_types']) or '-'}")
        typer.echo(f"FP32 layer types  {', '.join(report['fp32_types']) or '-'}")
        if report["fp32_nodes"]:
            typer.echo(f"FP32 nodes        {', '.join(report['fp32_nodes'])}")
        if report["bias_corrected"]:
            typer.echo(f"bias correction   {report['bias_corrected']} INT8 convs")
        if report["probe_ms"]:
            probe = ", ".join(f"{k} {v:.1f}" for k, v in report["probe_ms"].items())
            typer.echo(f"timed (ms, batch {report['probe_batch']})  {probe}")
        typer.echo(
            f"check  cosine to FP32 on {report['check_crops']} held-out crops: mean "
            f"{report['cosine_mean']:.4f}, min {report['cosine_min']:.4f}"
        )

    bench_app.command("extractor")(bench_extractor)


def bench_extractor(
    models: str = typer.Option(
        "",
        "--models",
        help="Extra ONNX rows, name=FILE.onnx comma-separated (INT8, pruned, ...); the last is "
        "the headline unless --headline. Without it: one row `default`, the bundled default "
        "embedder.",
    ),
    source: str = typer.Option(
        "default",
        "--source",
        help="The uncompressed FP32 ONNX model: default or source (the bundled "
        "source_fp32.onnx) or FILE.onnx.",
    ),
    baseline: str = typer.Option(
        "resnet50", "--baseline", help="PyTorch baseline row: a registry name[@HxW], or none."
    ),
    headline: str | None = typer.Option(None, "--headline", help="Row compared to the source."),
    data: Path | None = typer.Option(
        None, "--data", help="Market folder: score every ONNX row (mAP, rank-1)."
    ),
    batch: int = typer.Option(32, "--batch", min=1, help="Batch size of the throughput runs."),
    threads: int = typer.Option(2, "--threads", min=1, help="Intra-op threads for every row."),
    repeats: int = typer.Option(10, "--repeats", min=1, help="Timed runs at --batch (median)."),
    repeats_b1: int = typer.Option(30, "--repeats-b1", min=1, help="Timed runs at batch 1."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """ReID extractors side by side in one process: throughput (batch 32), latency (batch 1),
    GMACs, parameters, size, peak memory and optionally mAP; ResNet-50 and the source model in
    PyTorch FP32, the source in ONNX Runtime FP32, then the given ONNX files (without
    --models: the bundled default embedder, the headline against its FP32 source)."""
    with friendly_errors(as_json), progress_bar(not as_json) as update:
        try:
            from compression.bench import bench_extractor as run
            from compression.bench import markdown_table
        except ModuleNotFoundError as err:
            if err.name not in ("torch", "onnx", "torchreid"):
                raise
            raise _needs_extra(err) from err
        report: dict[str, Any] = run(
            source=_source(source),
            baseline=None if baseline.strip().lower() in ("", "none") else baseline.strip(),
            models=_extractor_rows(models),
            data=data,
            headline=headline,
            batch=batch,
            threads=threads,
            repeats=repeats,
            repeats_b1=repeats_b1,
            progress=update,
        )
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    typer.echo(markdown_table(report))
