"""Run folders shared by training (``engine``), adaptation (``adapt``) and distillation
(``compression.distill``): the folder check before a run, seeding, and ``log.csv``.

Each run writes ``OUT/last.pt`` that resume reads and one ``log.csv`` row per epoch, round or
step, appended as each ends, so a run killed between rows leaves a readable file with a header.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reid.errors import ReidTraceError

__all__ = ["append_row", "check_run_folder", "seed_everything"]


def append_row(path: Path, fields: Sequence[str], row: dict[str, Any]) -> None:
    """Append ``row`` (only ``fields``, in that order) to the csv at ``path``; header if new."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def check_run_folder(
    out: Path,
    resume: bool,
    *,
    what: str,
    finished: Sequence[str] = ("last.pt",),
    options: bool = True,
) -> Path:
    """``out/last.pt`` after checking the folder suits the run; else one ReidTraceError.

    ``out`` must not be a file; resuming needs ``last.pt``; a fresh run refuses a folder that
    holds any of ``finished`` (``what`` names the run in the message). ``options`` words the
    messages for the CLI (``--out``, ``--resume``) or for Python callers (``out``, ``resume``).
    """
    dash = "--" if options else ""
    last = out / "last.pt"
    if out.exists() and not out.is_dir():
        raise ReidTraceError(f"{dash}out {str(out)!r} is a file", hint="pass a folder")
    if resume and not last.is_file():
        raise ReidTraceError(
            f"{dash}resume: no checkpoint {str(last)!r} to continue from",
            hint=f"start a new run without {dash}resume, or pass the {dash}out of an earlier run",
        )
    if not resume and any((out / name).exists() for name in finished):
        raise ReidTraceError(
            f"{str(out)!r} already holds {what} ({', '.join(finished)})",
            hint=f"{'pass ' if options else ''}{dash}resume to continue it, or choose another "
            f"{dash}out",
        )
    return last


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``np.random`` (torchreid's sampler shuffles with both) and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
