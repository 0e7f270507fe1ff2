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
