"""A contact sheet of a world's people, one row per identity and one column per camera.

Built from the world's own Market-format crops, so it shows exactly what training and evaluation
will see: a person can check at a glance that identities are distinguishable and that each
camera's look (scale, light, blur, noise) is right.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from reid.data.market import read_market
from reid.errors import ReidTraceError

CELL_W, CELL_H = 64, 128


def write_preview(
    world: str | Path, *, max_identities: int = 24, path: str | Path | None = None
) -> Path:
    """Write ``preview.png`` into the world folder (or ``path``) and return where it went."""
    world = Path(world)
    data = read_market(world / "market", require_train=False)
    cams = sorted({im.camid for im in data.train + data.query + data.gallery if im.pid > 0})
    if not cams:
        raise ReidTraceError(
            f"{world} has no identity crops to preview", hint="render a larger world"
        )
    cells: dict[int, dict[int, Path]] = defaultdict(dict)
    for im in sorted(
        data.query + data.gallery + data.train, key=lambda m: (m.pid, m.camid, m.frame)
    ):
        if im.pid > 0 and im.camid not in cells[im.pid]:
            cells[im.pid][im.camid] = im.path
    desc = _descriptions(world / "identities.csv")
    # most-seen identities first, then by id: the sheet shows cross-camera appearance
    pids = sorted(cells, key=lambda p: (-len(cells[p]), p))[:max_identities]
    pids.sort()
    label_w = 260
    sheet = np.full(
        (len(pids) * (CELL_H + 4) + 24, label_w + len(cams) * (CELL_W + 4), 3), 245, np.uint8
    )
    for j, cam in enumerate(cams):
        cv2.putText(
            sheet,
            f"c{cam}",
            (label_w + j * (CELL_W + 4) + 18, 16),
            0,
            0.45,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    for i, pid in enumerate(pids):
        y = 24 + i * (CELL_H + 4)
        cv2.putText(sheet, f"id {pid}", (6, y + 20), 0, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        words = desc.get(pid, "").split(", ")
        for k, chunk in enumerate(words[:5]):
            cv2.putText(
                sheet, chunk[:38], (6, y + 40 + 16 * k), 0, 0.36, (60, 60, 60), 1, cv2.LINE_AA
            )
        for j, cam in enumerate(cams):
            if cam in cells[pid]:
                img = cv2.imread(str(cells[pid][cam]))
                img = cv2.resize(img, (CELL_W, CELL_H))
                x = label_w + j * (CELL_W + 4)
                sheet[y : y + CELL_H, x : x + CELL_W] = img
    out = Path(path) if path is not None else world / "preview.png"
    if not cv2.imwrite(str(out), sheet):
        raise ReidTraceError(f"cannot write {out}", hint="check that the folder is writable")
    return out


def _descriptions(path: Path) -> dict[int, str]:
    if not path.is_file():
        return {}
    with path.open() as f:
        return {int(r["id"]): r.get("description", "") for r in csv.DictReader(f)}
