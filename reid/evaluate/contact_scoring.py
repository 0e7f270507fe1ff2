"""Contact tracing scores: predicted contact pairs against the synthetic world's ``contacts.csv``.

Plain data in, numbers out (no SQL, no store): the caller traces subjects, maps each predicted
contact to a true identity (``None`` when it matches none), and passes
``(subject identity, contact identity, exposure_s)`` triples.

* Pairs are *directed*: ``(A, B)`` is "B is a contact of A", so tracing A and tracing B are
  scored separately (``contacts.csv`` lists every pair in both directions).
* ``contact_precision`` = matched predicted pairs / predicted pairs; ``contact_recall`` =
  matched true pairs / true pairs; both 1.0 when there is nothing to divide by (no prediction
  makes no false claim, no truth cannot be missed).
* ``exposure_mae_s``: mean |predicted - true total exposure| over matched pairs (the true total
  is ``total_exposure_s``: all cameras, overlapping views counted once); ``None`` with no match.
* The same pair predicted twice (a person split in two by association) counts once, with the
  larger exposure; a contact with no identity (``None``) is a false positive each time.
* ``subjects`` restricts the truth (and the predictions) to the identities that were traced.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from reid.errors import ReidTraceError

__all__ = ["ContactScore", "read_true_contacts", "score_contacts"]

Pair = tuple[int, int]


@dataclass(frozen=True)
class ContactScore:
    contact_precision: float
    contact_recall: float
    exposure_mae_s: float | None
    predicted_pairs: int
    true_pairs: int
    matched_pairs: int

    def to_json(self) -> dict[str, float | int | None]:
        return asdict(self)


def read_true_contacts(path: str | Path) -> dict[Pair, float]:
    """``contacts.csv`` (one row per pair and camera) as ``{(subject, contact): total seconds}``."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise ReidTraceError(
            f"cannot read the true contacts {path}: {err.strerror or err}",
            hint="give the folder `reidtrace synth` wrote (it holds contacts.csv)",
        ) from err
    out: dict[Pair, float] = {}
    try:
        for r in rows:
            out[(int(r["subject"]), int(r["contact"]))] = float(r["total_exposure_s"])
    except (KeyError, TypeError, ValueError) as err:
        raise ReidTraceError(
            f"{path} is not a contacts.csv of `reidtrace synth` ({err!r})",
            hint="expected columns subject, contact, ..., total_exposure_s",
        ) from err
    return out


def score_contacts(
    predicted: Iterable[tuple[int, int | None, float]],
    truth: dict[Pair, float],
    *,
    subjects: Iterable[int] | None = None,
) -> ContactScore:
    """Precision and recall over directed contact pairs, and the exposure error of matches."""
    keep = None if subjects is None else {int(s) for s in subjects}
    best: dict[Pair, float] = {}
    unmatched = 0
    for subject, contact, exposure in predicted:
        if keep is not None and int(subject) not in keep:
            continue
        if contact is None:
            unmatched += 1
            continue
        pair = (int(subject), int(contact))
        best[pair] = max(best.get(pair, float("-inf")), float(exposure))
    true = {p: e for p, e in truth.items() if keep is None or p[0] in keep}
    matched = [p for p in best if p in true]
    n_pred = len(best) + unmatched
    errors = [abs(best[p] - true[p]) for p in matched]
    return ContactScore(
        contact_precision=len(matched) / n_pred if n_pred else 1.0,
        contact_recall=len(matched) / len(true) if true else 1.0,
        exposure_mae_s=sum(errors) / len(errors) if errors else None,
        predicted_pairs=n_pred,
        true_pairs=len(true),
        matched_pairs=len(matched),
    )
