"""``reidtrace``: one Typer app, one verb per job.

A verb reads flags and ``Settings``, calls one library function and prints. ``--json`` writes
exactly one JSON document to stdout (the result or the error); progress goes to stderr. A
``ReidTraceError`` (bad input) prints one line and a hint and exits with code 2, as do unknown
options and bad values; anything else is a bug and keeps its traceback (shown with ``--debug``).

The import graph runs one way: ``reidtrace.app`` (the Typer app and the helpers every verb
shares) <- the verb modules ``reidtrace.verbs_*`` <- this module, which registers them and owns
:func:`main`. Each verb module defines ``register(app)``; the order of the calls below is the
order of the verbs in ``reidtrace --help``.
"""

from __future__ import annotations

import sys

import typer

from reidtrace import (
    verbs_adapt,
    verbs_compress,
    verbs_config,
    verbs_eval,
    verbs_ingest,
    verbs_models,
    verbs_search,
    verbs_trace,
    verbs_world,
)
from reidtrace.app import app, err_console

__all__ = ["app", "main"]

# Typer vendors its own Click; reach its exception types through the public BadParameter.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

for _verbs in (
    verbs_world,
    verbs_config,
    verbs_eval,
    verbs_models,
    verbs_adapt,
    verbs_ingest,
    verbs_search,
    verbs_trace,
    verbs_compress,
):
    _verbs.register(app)


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
