"""MOTChallenge text files (``gt.txt``, ``det.txt``) to and from :class:`Detections`.

One box per line, comma separated, 1-based frame numbers::

    gt.txt   frame, id, x, y, w, h, conf, class, visibility          (9 columns, MOT17/20)
    det.txt  frame, -1, x, y, w, h, conf, -1, -1, -1                 (10 columns: the last
                                                                      three are world x, y, z)

Older and third-party files have 6 to 8 columns; anything with at least 6 is read. ``Detections``
holds 0-based ``frame_idx``, so the reader subtracts 1 and the writer adds it back. The synthetic
world writes its per-camera truth with :func:`write_mot`, which always writes the 9-column gt
format with deterministic bytes, so the truth files can be diffed and hashed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid.boxes import xywh_to_xyxy
from reid.detections import Detections
from reid.errors import ReidTraceError

__all__ = ["read_mot", "write_mot"]

_MIN_COLS = 6


def read_mot(path: str | Path, *, camera_id: str = "") -> Detections:
    """Read a MOTChallenge ``gt.txt`` or ``det.txt`` file.

    ``track_id`` is column 2, or ``None`` when every id is -1 (detection files). ``confidence``
    is column 7 (1 when the file has only 6 columns; in gt files it is the 0/1 "consider" flag).
    ``extra["class"]`` (int64) and ``extra["visibility"]`` (float32) are set from columns 8 and 9
    of 8- or 9-column files; 10-column files carry world coordinates there, which are dropped.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ReidTraceError(
            f"MOT file {str(path)!r} {what}",
            hint="pass a MOTChallenge gt/gt.txt or det/det.txt file",
        )
    rows: list[list[float]] = []
    ncols = 10
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            text = line.strip()
            if not text:
                continue
            fields = [p.strip() for p in text.split(",")] if "," in text else text.split()
            if fields and fields[-1] == "":
                fields.pop()  # a trailing comma
            try:
                values = [float(v) for v in fields]
            except ValueError:
                values = []
            if len(values) < _MIN_COLS or not _frame_and_id_ok(values):
                raise ReidTraceError(
                    f"{path.name} line {lineno} is not a MOTChallenge box: {text[:120]!r}",
                    hint="each line needs at least 6 numbers: frame (>= 1, integer), id (integer), "
                    "x, y, w, h[, conf, class, visibility]",
                )
            ncols = min(ncols, len(values))
            rows.append(values[:10] + [np.nan] * (10 - min(len(values), 10)))
    if not rows:
        return Detections.empty(camera_id)
    table = np.array(rows, dtype=np.float64)
    frame = table[:, 0].astype(np.int64) - 1
    ids = table[:, 1].astype(np.int64)
    conf = table[:, 6] if ncols >= 7 else np.ones(len(table))
    extra: dict[str, np.ndarray] = {}
    if ncols in (8, 9):
        extra["class"] = table[:, 7].astype(np.int64)
    if ncols == 9:
        extra["visibility"] = table[:, 8].astype(np.float32)
    return Detections(
        xyxy=xywh_to_xyxy(table[:, 2:6]),
        confidence=conf,
        frame_idx=frame,
        track_id=None if np.all(ids == -1) else ids,
        extra=extra,
        camera_id=camera_id,
    )


def _frame_and_id_ok(values: list[float]) -> bool:
    """Frame numbers are 1-based integers and ids integers; anything else is a broken line."""
    frame, tid = values[0], values[1]
    finite = all(np.isfinite(values[:6]))
    return finite and frame >= 1 and frame == int(frame) and tid == int(tid)


def write_mot(path: str | Path, dets: Detections) -> None:
    """Write ``dets`` as a 9-column MOTChallenge gt file, sorted by frame then id.

    Ids are -1 when ``dets`` has no ``track_id``; class and visibility come from ``extra``
    (default 1 = pedestrian, 1.0 = fully visible). Numbers are written compactly: integers with
    ``%d``, boxes with at most 2 decimals, confidence and visibility with at most 4, so the same
    detections always give the same bytes. Parent folders are created.
    """
    path = Path(path)
    n = len(dets)
    ids = dets.track_id if dets.track_id is not None else np.full(n, -1, np.int64)
    cls = dets.extra.get("class")
    cls = np.ones(n, np.int64) if cls is None else np.asarray(cls).astype(np.int64)
    vis = dets.extra.get("visibility")
    vis = np.ones(n, np.float64) if vis is None else np.asarray(vis, np.float64)
    order = np.lexsort((ids, dets.frame_idx))
    xywh = dets.xywh.astype(np.float64)
    lines = []
    for i in order:
        x, y, w, h = (_num(v, 2) for v in xywh[i])
        lines.append(
            f"{dets.frame_idx[i] + 1:d},{ids[i]:d},{x},{y},{w},{h},"
            f"{_num(dets.confidence[i], 4)},{cls[i]:d},{_num(vis[i], 4)}\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)


def _num(value: float, decimals: int) -> str:
    """``12.5`` -> ``'12.5'``, ``3.0`` -> ``'3'``, ``-0.001`` -> ``'0'``: short and stable."""
    text = f"{float(value):.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
