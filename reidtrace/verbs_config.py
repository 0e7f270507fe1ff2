"""``reidtrace config``: the effective settings (defaults, config file, ``REIDTRACE_*``).

The body imports ``indexer.settings`` (pydantic-settings) lazily, so ``reidtrace --help`` stays
fast.
"""

from __future__ import annotations

import json

import typer

from reidtrace.app import friendly_errors

__all__ = ["register"]


def config(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Show the effective settings (defaults, config file and REIDTRACE_* variables)."""
    from indexer.settings import load_settings

    with friendly_errors(as_json):
        cfg = load_settings()
    data = json.loads(cfg.model_dump_json())
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    for k, v in data.items():
        typer.echo(f"{k} = {v}")


def register(app: typer.Typer) -> None:
    """Add ``config`` to the app (called by ``reidtrace.cli``)."""
    app.command()(config)
