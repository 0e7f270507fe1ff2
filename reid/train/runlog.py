"""The run folders' ``log.csv``: one row per epoch, round or step, appended as each ends.

Training (``engine``), adaptation (``adapt``) and distillation (``compression.distill``) log
different columns through the same two lines of csv handling, so a run killed between rows
leaves a readable file with a header.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["append_row"]


def append_row(path: Path, fields: Sequence[str], row: dict[str, Any]) -> None:
    """Append ``row`` (only ``fields``, in that order) to the csv at ``path``; header if new."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)
