"""Writing a world folder safely, and the files both world kinds (video, crops) share.

A world is built in a sibling ``.NAME.partial`` folder and renamed into place only when complete,
so an interrupted run never leaves a half-written world that looks finished, and a folder the
user cares about is never written into or deleted (only a previous world, with ``overwrite``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from reid.errors import ReidTraceError
from reid.synth.appearance import Appearance

IDENTITY_COLUMNS = (
    "id",
    "role",
    "group",
    "split",
    "cameras",
    "twin_of",
    "twin_detail",
    "height_m",
    "description",
)


def _check_destination(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise ReidTraceError(f"{out} exists and is not a folder", hint="choose another OUT path")
    if out.exists() and any(out.iterdir()):
        if not (out / "world.json").exists():
            raise ReidTraceError(
                f"{out} is not empty and holds no synthetic world; refusing to write into it",
                hint="choose an empty or new folder",
            )
        if not overwrite:
            raise ReidTraceError(
                f"{out} already holds a world", hint="pass --overwrite to replace it"
            )
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReidTraceError(
            f"cannot create {parent}: {err.strerror}", hint="check the path"
        ) from err
    if not os.access(parent, os.W_OK):
        raise ReidTraceError(f"{parent} is not writable", hint="choose a folder you can write to")
    return parent


@contextmanager
def staged_output(out: str | Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out``, on failure it vanishes."""
    out = Path(out)
    parent = _check_destination(out, overwrite)
    staging = parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def write_json(path: Path, obj: object) -> None:
    """Deterministic JSON (sorted keys), so the same world gives the same bytes."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_identities(
    path: Path, rows: Iterable[tuple[int, Appearance, str, int, str, str]]
) -> None:
    """``identities.csv`` from (id, appearance, role, group, split, cameras seen by)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(IDENTITY_COLUMNS)
        for pid, app, role, group, split, cameras in rows:
            twin = app.twin_of + 1 if app.twin_of >= 0 else -1  # appearance index -> id
            w.writerow(
                [
                    pid,
                    role,
                    group,
                    split,
                    cameras,
                    twin,
                    app.twin_detail,
                    f"{app.height_m:.2f}",
                    app.describe(),
                ]
            )


def split_identities(seed: int, n: int, test_frac: float) -> dict[int, str]:
    """Disjoint train/test identities (ids 1..n) by a seeded draw."""
    perm = np.random.default_rng([seed, 3]).permutation(n) + 1
    n_test = int(round(n * test_frac))
    return {int(p): ("test" if i < n_test else "train") for i, p in enumerate(perm)}


def pick_query(items: list, n_cameras: int, rng: np.random.Generator) -> int:
    """Index of the query among one identity's crops in one camera, or -1 for none.

    As in Market-1501, an identity gets at most one query per camera, and only where it can be
    matched: seen by >= 2 cameras, and a camera keeps >= 1 gallery crop after giving a query, so
    every query has a true match in another camera's gallery.
    """
    if n_cameras < 2 or len(items) < 2:
        return -1
    return int(rng.integers(len(items)))
