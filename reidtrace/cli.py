"""``reidtrace``: one Typer app, one verb per job.

A verb reads flags and ``Settings``, calls one library function and prints. ``--json`` writes
exactly one JSON document to stdout (the result or the error); progress goes to stderr. A
``ReidTraceError`` (bad input) prints one line and a hint and exits with code 2, as do unknown
options and bad values; anything else is a bug and keeps its traceback (shown with ``--debug``).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from reid.errors import ReidTraceError

app = typer.Typer(
    name="reidtrace",
    help="Person re-identification retrieval for surveillance footage.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err_console = Console(stderr=True)
out_console = Console()
_STATE = {"debug": False}
# Typer vendors its own Click; reach its exception types through the public BadParameter.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors."),
) -> None:
    _STATE["debug"] = debug


@contextmanager
def friendly_errors(as_json: bool = False) -> Iterator[None]:
    """ReidTraceError -> one line (or one JSON document) and exit code 2."""
    try:
        yield
    except ReidTraceError as err:
        if as_json:
            typer.echo(json.dumps({"error": err.message, "hint": err.hint}))
        else:
            line = f"error: {err.message}" + (f" (hint: {err.hint})" if err.hint else "")
            err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        if _STATE["debug"]:
            traceback.print_exc()
        raise typer.Exit(2) from None


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``update(stage, done, total)``."""
    if not enabled:
        yield lambda *_: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=err_console, transient=False)
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if not tasks:
            bar.start()  # lazily: input errors raised before any work print no empty bar
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


# --- synth ---------------------------------------------------------------------------------------
@app.command()
def synth(
    out: Path = typer.Argument(..., help="Folder to write the world into (new or empty)."),
    seed: int = typer.Option(0, help="Random seed: the same arguments give the same world."),
    cameras: int | None = typer.Option(
        None, help="Number of cameras, 1-8 [default: 4; 6 with --crops-only]."
    ),
    identities: int | None = typer.Option(
        None, help="Number of people [default: 48; 750 with --crops-only]."
    ),
    groups: int = typer.Option(6, help="Groups of 2-4 people who walk and stand together."),
    minutes: float = typer.Option(2.0, help="Minutes of footage per camera."),
    fps: float = typer.Option(10.0, help="Frames per second."),
    width: int = typer.Option(480, help="Frame width in pixels."),
    height: int = typer.Option(360, help="Frame height in pixels."),
    difficulty: float = typer.Option(0.5, help="0 (easy) .. 1 (hard): look-alikes, noise, blur."),
    passers: float = typer.Option(0.3, help="Share of lone people who only pass through."),
    hard_negatives: float = typer.Option(0.3, help="Share of identities that twin another."),
    crops_only: bool = typer.Option(
        False, "--crops-only", help="Fast path: only Market-format crops, no video."
    ),
    images_per_camera: int = typer.Option(
        8, help="With --crops-only: crops per identity and camera."
    ),
    preview: bool = typer.Option(
        False, "--preview", help="Also write preview.png (a contact sheet)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a world already in OUT."),
    workers: int = typer.Option(0, help="Processes to render with (0 = one per CPU core)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Render a seeded multi-camera world with full ground truth (or only Market crops)."""
    from reid.synth import crops, world
    from reid.synth.preview import write_preview

    with friendly_errors(as_json):
        if crops_only:
            cfg_c = crops.CropsConfig(
                seed=seed,
                cameras=6 if cameras is None else cameras,
                identities=750 if identities is None else identities,
                images_per_camera=images_per_camera,
                difficulty=difficulty,
                hard_negative_frac=hard_negatives,
            )
            with progress_bar(not as_json) as update:
                summary = crops.generate_crops(
                    out, cfg_c, workers=workers or None, overwrite=overwrite, progress=update
                )
        else:
            cfg = world.WorldConfig(
                seed=seed,
                cameras=4 if cameras is None else cameras,
                identities=48 if identities is None else identities,
                groups=groups,
                minutes=minutes,
                fps=fps,
                width=width,
                height=height,
                difficulty=difficulty,
                passer_frac=passers,
                hard_negative_frac=hard_negatives,
            )
            with progress_bar(not as_json) as update:
                summary = world.generate_world(
                    out, cfg, workers=workers or None, overwrite=overwrite, progress=update
                )
        if preview:
            summary["preview"] = str(write_preview(out))
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
        return
    print_world_summary(out, summary)


def print_world_summary(out: Path, summary: dict) -> None:
    table = Table(title=f"synthetic world in {out}", show_header=False)
    m = summary["market"]
    rows = [
        ("identities (seen)", f"{summary['identities']} ({summary.get('identities_seen', '-')})"),
        ("cameras", " ".join(summary.get("cameras", [])) or "-"),
    ]
    if "frames_per_camera" in summary:
        rows += [
            ("frames per camera", str(summary["frames_per_camera"])),
            ("ground-truth boxes", str(summary["gt_boxes"])),
            ("visits (trajectory entries)", str(summary["visits"])),
            ("contact pairs", str(summary["contact_pairs"])),
        ]
    rows += [
        ("market train", f"{m['train_images']} images, {m['train_ids']} ids"),
        ("market query / gallery", f"{m['query_images']} / {m['gallery_images']} images"),
        ("market test ids", str(m["test_ids"])),
        ("distractors / junk", f"{m['distractors']} / {m['junk']}"),
    ]
    if "preview" in summary:
        rows.append(("preview", summary["preview"]))
    for k, v in rows:
        table.add_row(k, v)
    out_console.print(table)


# --- demo ----------------------------------------------------------------------------------------
@app.command()
def demo(
    out: Path | None = typer.Option(None, help="Where to put the demo world (default: HOME/demo)."),
    seed: int = typer.Option(7, help="Seed of the demo world."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run the end-to-end demo: render a world, evaluate the model, ingest, score the tracks."""
    from reid.settings import load_settings
    from reidtrace.demo import run_demo

    with friendly_errors(as_json):
        cfg_s = load_settings()
        target = out or cfg_s.home / "demo"
        with progress_bar(not as_json) as update:
            summary = run_demo(
                target, seed=seed, workers=cfg_s.workers or None, model=None, progress=update
            )
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True, default=str))
        return
    print_world_summary(target, summary["world"])
    r, t, i = summary["reid"], summary["tracking"], summary["ingest"]
    typer.echo(
        f"ReID model on the world's crops: mAP {r['mAP']:.1f}  rank-1 {r['rank1']:.1f}  "
        f"({r['num_query']} queries, {r['num_gallery']} gallery images)"
    )
    typer.echo(
        f"ingested {i['done']} videos: {i['frames']} frames, {i['detections']} tracked boxes, "
        f"{i['sightings']} sightings, {i['index_vectors']} vectors in the index "
        f"({'agrees' if summary['index_ok'] else 'DISAGREES'} with SQL)"
    )
    for err in summary["ingest_errors"]:
        typer.echo(f"  ingest error: {err}")
    if t:
        typer.echo(
            f"tracking vs truth: MOTA {t['mota']:.3f}  IDF1 {t['idf1']:.3f}  "
            f"ID switches {t['id_switches']}"
        )
    typer.echo(f"done in {summary['seconds']} s; everything is in {target}")


# --- bench ---------------------------------------------------------------------------------------
bench_app = typer.Typer(help="Measure speed against the product's targets (not tests).")
app.add_typer(bench_app, name="bench")


@bench_app.command("synth")
def bench_synth(
    workers: int = typer.Option(0, help="Processes to render with (0 = one per CPU core)."),
    identities: int = typer.Option(750, help="Identities in the crops training set."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Time the demo world (target < 60 s) and a 750-identity crops set (target < 15 min)."""
    from reid.synth.bench import bench_synth as run

    with friendly_errors(as_json), progress_bar(not as_json) as update:
        report = run(workers=workers or None, crops_identities=identities, progress=update)
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    for name, r in report.items():
        if isinstance(r, dict):
            verdict = "meets" if r["meets_target"] else "MISSES"
            typer.echo(f"{name}: {r['seconds']} s ({verdict} the {r['target_s']:.0f} s target) {r}")


# --- config --------------------------------------------------------------------------------------
@app.command()
def config(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Show the effective settings (defaults, config file and REIDTRACE_* variables)."""
    from reid.settings import load_settings

    with friendly_errors(as_json):
        cfg = load_settings()
    data = json.loads(cfg.model_dump_json())
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    for k, v in data.items():
        typer.echo(f"{k} = {v}")


# --- verbs that live in their own modules ---------------------------------------------------------
# Each module defines ``register(app)``, which adds its verbs with ``@app.command()``. Verb bodies
# import heavy libraries (torch) lazily, so ``reidtrace --help`` stays fast and torch-free.
_VERB_MODULES: tuple[str, ...] = (
    "reidtrace.verbs_eval",
    "reidtrace.verbs_models",
    "reidtrace.verbs_ingest",
)


def _register_verbs() -> None:
    import importlib

    for name in _VERB_MODULES:
        importlib.import_module(name).register(app)


_register_verbs()


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors become one line and exit code 2 (no Click box, no traceback)."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="reidtrace", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except _UsageError as err:
        ctx = err.ctx
        where = ctx.command_path if ctx is not None else "reidtrace"
        msg = err.format_message().replace("\n", " ")
        err_console.print(
            f"error: {msg} (hint: see `{where} --help`)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except typer.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except _ClickException as err:
        err_console.print(f"error: {err.format_message()}", markup=False, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
