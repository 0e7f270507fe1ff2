"""``reidtrace evaluate``, ``reidtrace export`` and ``bench reid-domains``: score a model, hand a
checkpoint to serving, and measure a model on real people beside the synthetic hold-out.

Verb bodies import the library lazily: ``evaluate`` of an ONNX model never loads torch, and
``reidtrace --help`` loads neither torch nor ONNX Runtime.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from reid.errors import ReidTraceError
from reidtrace.app import bench_app, friendly_errors, progress_bar

__all__ = ["register"]

_METRICS = (
    ("mAP", "mAP"),
    ("rank1", "rank-1"),
    ("rank5", "rank-5"),
    ("rank10", "rank-10"),
    ("mINP", "mINP"),
)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``export`` to the ``reidtrace`` app."""

    @app.command()
    def evaluate(
        data: Path = typer.Option(
            ..., "--data", help="Market-1501-format folder (query/ and bounding_box_test/)."
        ),
        model: Path | None = typer.Option(
            None,
            "--model",
            help="An .onnx model, a .pt/.pth training checkpoint, or default / source (the "
            "bundled INT8 model and its FP32 source) [default: the bundled model].",
        ),
        rerank: bool = typer.Option(
            False, "--rerank", help="k-reciprocal re-ranking (Zhong et al. 2017; slower)."
        ),
        flip: bool = typer.Option(
            False, "--flip", help="Average each image's embedding with its mirror image's."
        ),
        batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per batch."),
        as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    ) -> None:
        """Score a model on a Market-1501-format folder: mAP, CMC rank-1/5/10 and mINP (%)."""
        from reid.evaluate.run import evaluate_model

        with friendly_errors(as_json), progress_bar(not as_json) as update:
            report = evaluate_model(
                data, model, rerank=rerank, flip=flip, batch_size=batch_size, progress=update
            )
        if as_json:
            typer.echo(json.dumps(report))
            return
        extras = [name for name, on in (("re-ranked", rerank), ("flip", flip)) if on]
        typer.echo(f"model    {report['model']}" + (f" ({', '.join(extras)})" if extras else ""))
        typer.echo(f"query    {report['num_query']} scored, gallery {report['num_gallery']}")
        for key, label in _METRICS:
            typer.echo(f"{label:<8} {report[key]:6.2f} %")
        typer.echo(f"time     {report['seconds']:.1f} s")

    @app.command()
    def export(
        checkpoint: Path | None = typer.Option(
            None, "--checkpoint", help="A .pt training checkpoint (`reidtrace train`)."
        ),
        imagenet: bool = typer.Option(
            False,
            "--imagenet",
            help="Instead of a checkpoint: MobileNetV2 with only its ImageNet weights (the "
            "reference of `bench reid-domains`; flip-averaged unless --no-flip).",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="The ONNX file to write (FILE.onnx) [--imagenet default: "
            "<home>/models/imagenet_mobilenetv2_x1_0.onnx].",
        ),
        opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
        flip: bool | None = typer.Option(
            None,
            "--flip/--no-flip",
            help="Bake flip averaging into the model (each crop with its mirror image; 2x cost) "
            "[default: off for a checkpoint, on for --imagenet].",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Export a checkpoint (or the ImageNet-only MobileNetV2) to ONNX for the embedder,
        verified against PyTorch."""
        with friendly_errors(as_json):
            from reid.embed import OnnxEmbedder

            if (checkpoint is None) == (not imagenet):
                raise ReidTraceError(
                    "give exactly one of --checkpoint FILE.pt and --imagenet",
                    hint="reidtrace export --checkpoint RUN/best.pt --out model.onnx",
                )
            if out is None and not imagenet:
                raise ReidTraceError("--out is required", hint="--out model.onnx")
            try:
                from reid.models.export import export_checkpoint, export_imagenet
            except ModuleNotFoundError as err:  # the serving install has neither
                if err.name not in ("torch", "torchreid", "onnx"):
                    raise
                raise ReidTraceError(
                    f"exporting needs {err.name}, which is not installed",
                    hint="install the training extra: pip install 'reidtrace[train]'",
                ) from err

            t0 = time.perf_counter()
            if imagenet:
                flip = True if flip is None else flip
                path = export_imagenet(out or _imagenet_path(), opset=opset, flip=flip)
            else:
                flip = bool(flip)
                path = export_checkpoint(checkpoint, out, opset=opset, flip=flip)
            seconds = time.perf_counter() - t0
            contract = OnnxEmbedder(path, threads=1).contract
        report = {
            "out": str(path),
            "arch": contract.arch,
            "input_height": contract.height,
            "input_width": contract.width,
            "embed_dim": contract.embed_dim,
            "opset": opset,
            "flip": flip,
            "bytes": path.stat().st_size,
            "seconds": round(seconds, 3),
        }
        if as_json:
            typer.echo(json.dumps(report))
            return
        typer.echo(
            f"wrote {path} ({report['bytes'] / 1e6:.1f} MB): {contract.arch}, input "
            f"{contract.height}x{contract.width} RGB, {contract.embed_dim}-d embeddings"
            f"{', flip-averaged' if flip else ''}; ONNX Runtime matches PyTorch ({seconds:.1f} s)"
        )

    bench_app.command("reid-domains")(bench_reid_domains)


IMAGENET_FILE = "imagenet_mobilenetv2_x1_0.onnx"
"""Where ``export --imagenet`` writes by default, in the home's models folder."""


def _imagenet_path() -> Path:
    from indexer.settings import load_settings

    return Path(load_settings().models_dir) / IMAGENET_FILE


def _resolve_models(spec: str) -> dict[str, Path]:
    """``default``, ``source``, ``imagenet`` or ONNX paths, comma-separated -> {row name: file}."""
    from reid.embed import default_model, source_model

    out: dict[str, Path] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "default":
            out[item] = default_model()
        elif item == "source":
            out[item] = source_model()
        elif item == "imagenet":
            path = _imagenet_path()
            if not path.is_file():
                raise ReidTraceError(
                    f"the ImageNet-only model is not exported yet ({path})",
                    hint="run once: reidtrace export --imagenet (needs the train extra)",
                )
            out[item] = path
        else:
            path = Path(item).expanduser()
            if path.suffix.lower() != ".onnx" or not path.is_file():
                raise ReidTraceError(
                    f"model {item!r} is not an .onnx file",
                    hint="--models takes default, source, imagenet or paths of .onnx files",
                )
            out[path.name] = path
    if not out:
        raise ReidTraceError("no model given", hint="e.g. --models default,imagenet")
    return out


def bench_reid_domains(
    models: str = typer.Option(
        "default,imagenet",
        "--models",
        help="Comma-separated: default (the bundled default embedder, INT8), source (its "
        "bundled FP32 source), imagenet (`export --imagenet`), or .onnx paths.",
    ),
    synthetic: Path | None = typer.Option(
        None,
        "--synthetic",
        help="Market folder of held-out rendered people (docs/embedding.md: `reidtrace synth "
        "DIR --crops-only --identities 750 --seed 202`, then DIR/market) [default: skipped].",
    ),
    gap: float = typer.Option(
        2.0, "--gap", help="Cross-time retrieval: seconds between a query and its matches."
    ),
    tracking: bool = typer.Option(
        False,
        "--tracking",
        help="Also ingest PETS 1-397 and TUD with the ReID cue of each model and the histogram "
        "cue (IDF1; several minutes).",
    ),
    gap_analysis: bool = typer.Option(
        False,
        "--gap-analysis",
        help="Instead: CUHK01 scores of the first model under test-time transforms "
        "(resolution, grayscale, colour normalisation, blur, flip).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """ReID on real people beside the synthetic hold-out: one row per model with mAP / rank-1 on
    the synthetic hold-out, CUHK01 and cross-time retrieval on the PETS and TUD truth (from
    ../shared/data, skipped when absent); optionally tracking IDF1 with each model as the cue."""
    from reid.evaluate import domains

    with friendly_errors(as_json), progress_bar(not as_json) as update:
        if not gap > 0:
            raise ReidTraceError(f"--gap must be > 0 seconds, got {gap}", hint="try 2")
        if synthetic is not None and not synthetic.is_dir():
            raise ReidTraceError(
                f"synthetic hold-out {str(synthetic)!r} is not a folder",
                hint="render it: reidtrace synth DIR --crops-only --identities 750 --seed 202, "
                "then pass DIR/market",
            )
        paths = _resolve_models(models)
        if gap_analysis:
            if not domains.CUHK01.is_dir():
                raise ReidTraceError(f"{domains.CUHK01} is not there", hint="see ../shared/data")
            name, path = next(iter(paths.items()))
            rows = domains.gap_analysis(domains.CUHK01, path, progress=update)
            if as_json:
                typer.echo(json.dumps({"model": str(path), "cuhk01": rows}, sort_keys=True))
                return
            typer.echo(f"CUHK01, model {name} ({path}), test-time transform of both sides")
            typer.echo(_gap_table(rows))
            return
        rows = domains.bench_reid_domains(paths, synthetic=synthetic, gap_s=gap, progress=update)
        if tracking:
            _add_tracking(rows, paths, update)
    if as_json:
        typer.echo(json.dumps(rows, sort_keys=True))
        return
    typer.echo(domains_table(rows))


def _add_tracking(rows: dict[str, dict], paths: dict[str, Path], progress: Any) -> None:
    """IDF1 of each model as the tracking cue, and of the histogram cue, per real sequence."""
    from indexer.ingest import IngestConfig
    from indexer.ingest.bench_tracking import bench_tracking
    from indexer.settings import load_settings

    models_dir = str(load_settings().models_dir)
    hist = bench_tracking(cfg=IngestConfig(models_dir=models_dir), worlds={}, progress=progress)
    for name, path in paths.items():
        cfg = IngestConfig(models_dir=models_dir, appearance="reid", embedder_path=str(path))
        reid = bench_tracking(cfg=cfg, worlds={}, progress=progress)
        rows[name]["tracking"] = {
            seq: {
                "idf1_reid": r.get("idf1"),
                "idf1_histogram": hist[seq].get("idf1"),
                "detector": r.get("detector"),
                **({"skipped": r["skipped"]} if "skipped" in r else {}),
            }
            for seq, r in reid.items()
        }


def _cell(r: dict | None, key: str) -> str:
    if not r or "skipped" in r or r.get(key) is None:
        return "-"
    return f"{r[key]:.3f}" if key.startswith("idf1") else f"{r[key]:.1f}"


def domains_table(rows: dict[str, dict]) -> str:
    """The bench rows as one markdown table (mAP / rank-1 in %, IDF1 as a fraction)."""
    from reid.evaluate.domains import MOT_SEQUENCES

    head = ["model", "synthetic mAP", "synthetic R1", "CUHK01 mAP", "CUHK01 R1"]
    for seq in MOT_SEQUENCES:
        head += [f"{seq} cross-time mAP", f"{seq} cross-time R1"]
    track = any("tracking" in r for r in rows.values())
    if track:
        for seq in MOT_SEQUENCES:
            head += [f"{seq} IDF1 ReID cue", f"{seq} IDF1 histogram"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, r in rows.items():
        cells = [name]
        for key in ("synthetic", "cuhk01", *MOT_SEQUENCES):
            cells += [_cell(r.get(key), "mAP"), _cell(r.get(key), "rank1")]
        if track:
            for seq in MOT_SEQUENCES:
                t = r.get("tracking", {}).get(seq)
                cells += [_cell(t, "idf1_reid"), _cell(t, "idf1_histogram")]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = sorted(
        {f"{k}: {v['skipped']}" for r in rows.values() for k, v in r.items()
         if isinstance(v, dict) and "skipped" in v}
    )  # fmt: skip
    gaps = {
        v["gap_s"]
        for r in rows.values()
        for v in r.values()
        if isinstance(v, dict) and "gap_s" in v
    }
    notes = [f"cross-time: matches at least {g:g} s apart" for g in sorted(gaps)]
    return "\n".join(lines + [f"skipped {s}" for s in skipped] + notes)


def _gap_table(rows: dict[str, dict]) -> str:
    lines = ["| transform | mAP | rank-1 | rank-5 |", "| --- | ---: | ---: | ---: |"]
    lines += [
        f"| {n} | {r['mAP']:.1f} | {r['rank1']:.1f} | {r['rank5']:.1f} |" for n, r in rows.items()
    ]
    return "\n".join(lines)
