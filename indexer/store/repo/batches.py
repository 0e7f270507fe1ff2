"""Id lists cut into batches for ``IN (...)``: shared by every repo module that reads by id.

One public helper instead of a private copy per module, so the batch size (and the SQLite
variable limit it respects) is decided in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["IN_CHUNK", "in_batches"]

IN_CHUNK = 900  # ids per IN (...) list: well under every SQLite build's variable limit


def in_batches(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``values``, at most ``size`` long, in order."""
    for i in range(0, len(values), size):
        yield values[i : i + size]
