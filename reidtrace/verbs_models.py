"""Verbs of the model side: ``train`` (the bag-of-tricks recipe), ``models`` (the registry) and
``detectors`` (the detector models: listed, installed).

torch is imported inside the verb bodies only, so ``reidtrace --help`` and the serving verbs
never load it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from reidtrace.app import friendly_errors, out_console, progress_bar

__all__ = ["register"]


def train(
    data: Path = typer.Option(..., help="Market-1501-format folder (bounding_box_train/, ...)."),
    arch: str = typer.Option(..., help="Registered model name (see `reidtrace models`)."),
    out: Path = typer.Option(..., help="Run folder: last.pt, best.pt, log.csv, config.json."),
    epochs: int = typer.Option(120, help="Epochs in all (the recipe's 120; warm-up scales)."),
    batch_size: int = typer.Option(64, help="Images per batch (identities x num-instances)."),
    num_instances: int = typer.Option(4, help="Images per identity in a batch."),
    lr: float = typer.Option(3.5e-4, help="Adam learning rate after warm-up."),
    schedule: str = typer.Option("cosine", help="Decay after warm-up: cosine or step."),
    eval_every: int = typer.Option(10, help="Evaluate every N epochs and at the end (0 = never)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUT from last.pt."),
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu or cuda."),
    max_images_per_epoch: int | None = typer.Option(
        None, help="Cap each epoch at about this many images (quick runs)."
    ),
    stop_after: int | None = typer.Option(
        None,
        help="End after this epoch while the learning-rate schedule still spans --epochs "
        "(a time-boxed run; continue it later with --resume).",
    ),
    seed: int = typer.Option(0, help="Random seed."),
    imagenet: bool | None = typer.Option(
        None,
        "--imagenet/--no-imagenet",
        help="ImageNet init (default: on for MobileNetV2, the only weights available offline).",
    ),
    weights: Path | None = typer.Option(
        None,
        help="Start from these weights: our checkpoint, a torchreid model-zoo file, one of our "
        "ONNX exports, or `default` (the shipped model, fine-tuned).",
    ),
    center_loss: float = typer.Option(0.0, help="Centre-loss weight (the recipe's 5e-4; 0 = off)."),
    augment: str = typer.Option(
        "none",
        help="Domain augmentation preset: none, or domain (all five below, docs/embedding.md); "
        "the options below override it one by one.",
    ),
    color_jitter: float | None = typer.Option(
        None, help="Brightness/contrast/saturation jitter strength, small hue (0 = off)."
    ),
    camera_response: float | None = typer.Option(
        None, help="Per-channel gain and gamma strength: camera white balance (0 = off)."
    ),
    grayscale: float | None = typer.Option(None, help="Probability of a grey crop (0 = off)."),
    blur: float | None = typer.Option(None, help="Probability of a gaussian blur (0 = off)."),
    low_res: float | None = typer.Option(
        None, help="Probability of shrinking to 30-100% and back (0 = off)."
    ),
    distill: float = typer.Option(
        0.0,
        help="Weight of the relational distillation from the frozen ImageNet MobileNetV2 "
        "(0 = off).",
    ),
    workers: int | None = typer.Option(
        None, help="Loader processes (default: the measured best, 1 on 2 cores)."
    ),
    threads: int | None = typer.Option(
        None, help="torch CPU threads (default: the measured best, 1 on 2 cores)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train a ReID model with the bag-of-tricks recipe (BNNeck, CE + triplet, PK batches)."""
    with friendly_errors(as_json):
        from reid.train import TrainConfig, resolve_augment
        from reid.train import train as run

        aug = resolve_augment(
            augment,
            color_jitter=color_jitter,
            camera_response=camera_response,
            grayscale=grayscale,
            blur=blur,
            low_res=low_res,
        )

        cfg = TrainConfig(
            data=data,
            arch=arch,
            out=out,
            epochs=epochs,
            batch_size=batch_size,
            num_instances=num_instances,
            lr=lr,
            schedule=schedule,  # type: ignore[arg-type]  (validated in TrainConfig)
            eval_every=eval_every,
            resume=resume,
            device=device,
            max_images_per_epoch=max_images_per_epoch,
            stop_after=stop_after,
            seed=seed,
            imagenet=imagenet,
            weights=weights,
            center_loss_weight=center_loss,
            distill_weight=distill,
            **asdict(aug),
            workers=workers,
            threads=threads,
        )
        with progress_bar(not as_json) as update:
            summary = run(cfg, progress=update)
    summary.pop("batch_losses", None)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
        return
    table = Table(title=f"training run {summary['run']}", show_header=False)
    last = summary["epochs_run"][-1] if summary["epochs_run"] else {}
    rows = [
        ("model", f"{summary['arch']} on {summary['device']}"),
        ("identities / images", f"{summary['num_classes']} / {summary['train_images']}"),
        ("epochs", f"{summary['start_epoch']}..{summary['epochs']}"),
        ("last loss (ce + triplet)", f"{last.get('loss', '-')}"),
        ("images/s (last epoch)", f"{last.get('images_per_s', '-')}"),
        ("best mAP", f"{summary['best_mAP']} % at epoch {summary['best_epoch']}"),
        ("checkpoints", f"{summary['last']}, {summary['best'] or '-'}"),
        ("log", summary["log"]),
    ]
    for k, v in rows:
        table.add_row(k, v)
    out_console.print(table)


def models(
    pattern: str = typer.Argument("", help="Only names containing this, e.g. 128x64."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the registered models: input size, embedding dim, parameters, GMACs per image."""
    with friendly_errors(as_json):
        from reid.models import list_models
        from reid.models.profile import model_stats

        stats = [model_stats(name) for name in list_models(pattern)]
    if as_json:
        typer.echo(json.dumps(stats, sort_keys=True))
        return
    table = Table(title="registered models")
    for col in ("name", "input (h x w)", "embed dim", "params (M)", "GMACs"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for s in stats:
        h, w = s["input_size"]
        table.add_row(
            s["name"],
            f"{h} x {w}",
            str(s["embed_dim"]),
            f"{s['params_m']:.2f}",
            f"{s['gmacs']:.3f}",
        )
    out_console.print(table)


def detectors_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the detector models: what each is, its licence and source, whether it is installed
    (and where); `--detector auto` runs the best installed one."""
    if ctx.invoked_subcommand is not None:
        return
    from indexer.settings import load_settings
    from reid.detect.catalog import best_installed, list_models

    with friendly_errors(as_json):
        models_dir = load_settings().models_dir
        rows = list_models(models_dir)
        best = best_installed(models_dir).name
    if as_json:
        typer.echo(json.dumps({"models_dir": str(models_dir), "auto": best, "models": rows}))
        return
    typer.echo(f"detector models (installed ones in {models_dir}; auto uses {best}):")
    for r in rows:
        if r["path"] is None:
            here = "installed (bundled)" if r["installed"] else "not installed"
        else:
            here = f"installed: {r['path']}" + ("" if r["hash_ok"] else " (hash override)")
        typer.echo(f"{r['name']:12s} {here}")
        typer.echo(f"{'':12s} {r['about']}")
        typer.echo(f"{'':12s} licence {r['licence']}; source {r['source']}")
        if r["sha256"]:
            typer.echo(f"{'':12s} sha256 {r['sha256']}")


def detectors_install(
    name: str = typer.Argument(..., help="Catalogue name, e.g. yolox-nano."),
    file: Path = typer.Argument(..., help="The downloaded model file."),
    force_hash: bool = typer.Option(
        False,
        "--force-hash",
        help="Accept a file whose sha256 differs from the pinned one (another export of the "
        "same weights), once it finds people on a rendered test card.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check a downloaded detector model's sha256 and install it into HOME/models."""
    from indexer.settings import load_settings
    from reid.detect.catalog import install_model

    with friendly_errors(as_json):
        out = install_model(name, file, load_settings().models_dir, force_hash=force_hash)
    if as_json:
        typer.echo(json.dumps(out, sort_keys=True))
        return
    how = (
        "sha256 matches the pinned one"
        if out["hash_ok"]
        else f"hash override; found {out['test_card_found']} people on the test card"
    )
    typer.echo(f"installed {out['name']} as {out['path']} ({how}); --detector auto now uses it")


def register(app: typer.Typer) -> None:
    """Add ``train``, ``models`` and ``detectors`` to the app (called by ``reidtrace.cli``)."""
    app.command()(train)
    app.command()(models)
    detectors_app = typer.Typer(help="Detector models: list them (no verb) or install one.")
    detectors_app.callback(invoke_without_command=True)(detectors_list)
    detectors_app.command("install")(detectors_install)
    app.add_typer(detectors_app, name="detectors")
