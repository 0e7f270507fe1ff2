"""The ``reidtrace`` Typer app and what every verb shares: root options, errors, progress, output.

This module sits below the verb modules (``reidtrace.verbs_*``), which import it to register
their verbs and to reuse :func:`friendly_errors` and :func:`progress_bar`; ``reidtrace.cli``
imports the verb modules and owns ``main``. Keeping the shared pieces here, rather than in
``cli.py``, is what lets the verbs import them without an import cycle.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from reid.errors import ReidTraceError

__all__ = [
    "app",
    "bench_app",
    "err_console",
    "friendly_errors",
    "out_console",
    "progress_bar",
]

app = typer.Typer(
    name="reidtrace",
    help="Person re-identification retrieval for surveillance footage.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
bench_app = typer.Typer(help="Measure speed against the product's targets (not tests).")
"""``reidtrace bench``: several verb modules add their benchmark here (synth, ingest)."""
app.add_typer(bench_app, name="bench")

err_console = Console(stderr=True)
out_console = Console()
_STATE = {"debug": False}


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


# -- the search of the current settings (search and trace verbs) ----------------------------

UNUSABLE_DETECTORS = {"oracle": "needs a video's ground truth", "mog2": "needs a video"}


def model_path(model: str | None, setting: str) -> str | None:
    """``--model`` beats the ``reid_model`` setting; "default" means the bundled model."""
    chosen = model or setting
    return None if chosen in (None, "", "default") else chosen


def _detector_factory(name: str, models_dir: Path) -> Any:
    """``frame_hw -> Detector`` for the named detector (``auto``: the best installed), one
    per photo size (YOLOX's input size follows the photo's)."""
    from reid.detect import create_detector
    from reid.detect.catalog import resolve_detector

    key = name.strip().lower()
    if key in UNUSABLE_DETECTORS:
        raise ReidTraceError(
            f"--detector {name} cannot find people in a photo: it {UNUSABLE_DETECTORS[key]}",
            hint="use auto (the best installed), yolox-nano, nanodet or hog",
        )
    resolve_detector(name, {}, models_dir)  # an unknown or missing model fails here, early
    made: dict[tuple[int, int], Any] = {}

    def factory(frame_hw: tuple[int, int]) -> Any:
        if frame_hw not in made:
            chosen = resolve_detector(name, {}, models_dir, frame_hw)
            made[frame_hw] = create_detector(chosen.name, **chosen.options)
        return made[frame_hw]

    return factory


def open_searcher(model: str | None, detector: str | None) -> Any:
    """The store, index, embedder and detector of the current settings (``search``, ``trace``):
    ``model`` beats the ``reid_model`` setting; ``detector`` None = the photo is a crop."""
    from indexer.query.search import Searcher
    from indexer.settings import load_settings
    from indexer.store.db import make_engine
    from reid.embed import create_embedder, default_model

    s = load_settings()
    path = model_path(model, s.reid_model) or default_model()
    embedder = create_embedder("onnx", path=path)
    return Searcher.open(
        engine=make_engine(s.database_url),
        index_location=s.index_location,
        embedder=embedder,
        detector=None if detector is None else _detector_factory(detector, s.models_dir),
        search_params=s.index.search_params or None,
    )
