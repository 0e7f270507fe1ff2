"""``reidtrace evaluate`` and ``reidtrace export``: score a model, hand a checkpoint to serving.

Verb bodies import the library lazily: ``evaluate`` of an ONNX model never loads torch, and
``reidtrace --help`` loads neither torch nor ONNX Runtime.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from reid.errors import ReidTraceError
from reidtrace.app import friendly_errors, progress_bar

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
            help="An .onnx model or a .pt/.pth training checkpoint [default: the bundled model].",
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
        checkpoint: Path = typer.Option(
            ..., "--checkpoint", help="A .pt training checkpoint (`reidtrace train`)."
        ),
        out: Path = typer.Option(..., "--out", help="The ONNX file to write (FILE.onnx)."),
        opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
        flip: bool = typer.Option(
            False,
            "--flip",
            help="Bake flip averaging into the model (each crop with its mirror image; 2x cost).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Export a checkpoint to ONNX for the embedder, verified against PyTorch."""
        with friendly_errors(as_json):
            from reid.embed import OnnxEmbedder

            try:
                from reid.models.export import export_checkpoint
            except ModuleNotFoundError as err:  # the serving install has neither
                if err.name not in ("torch", "torchreid", "onnx"):
                    raise
                raise ReidTraceError(
                    f"exporting needs {err.name}, which is not installed",
                    hint="install the training extra: pip install 'reidtrace[train]'",
                ) from err

            t0 = time.perf_counter()
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
