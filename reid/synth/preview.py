"""A contact sheet of a world's people: each identity as seen by each camera.

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
BLOCKS_PER_ROW = 4
LABEL_H = 30


def write_preview(
    world: str | Path, *, max_identities: int = 24, path: str | Path | None = None
) -> Path:
    """Write ``preview.png`` into the world folder (or ``path``) and return where it went."""
    world = Path(world)
    data = read_market(world / "market", require_train=False)
    images = [im for im in data.train + data.query + data.gallery if im.pid > 0]
    cams = sorted({im.camid for im in images})
    if not cams:
        raise ReidTraceError(
            f"{world} has no identity crops to preview", hint="render a larger world"
        )
    # per identity and camera the crop with the most detail (largest JPEG = largest, sharpest)
    best: dict[int, dict[int, Path]] = defaultdict(dict)
    for im in sorted(images, key=lambda m: (m.pid, m.camid, -m.path.stat().st_size, m.path.name)):
        best[im.pid].setdefault(im.camid, im.path)
    desc = _descriptions(world / "identities.csv")
    # identities seen by the most cameras first: the sheet is about cross-camera appearance
    pids = sorted(sorted(best, key=lambda p: (-len(best[p]), p))[:max_identities])
    block_w = len(cams) * (CELL_W + 2) + 12
    block_h = LABEL_H + CELL_H + 10
    n_rows = -(-len(pids) // BLOCKS_PER_ROW)
    sheet = np.full((n_rows * block_h + 4, BLOCKS_PER_ROW * block_w, 3), 245, np.uint8)
    for i, pid in enumerate(pids):
        bx, by = (i % BLOCKS_PER_ROW) * block_w + 6, (i // BLOCKS_PER_ROW) * block_h + 4
        words = desc.get(pid, "").split(", ")
        _text(sheet, f"id {pid}: " + ", ".join(words[1:3]), bx, by + 11, 0.34)
        _text(sheet, ", ".join(words[3:6]), bx, by + 24, 0.3)
        for j, cam in enumerate(cams):
            x = bx + j * (CELL_W + 2)
            y = by + LABEL_H
            if cam in best[pid]:
                img = cv2.imread(str(best[pid][cam]))
                sheet[y : y + CELL_H, x : x + CELL_W] = cv2.resize(img, (CELL_W, CELL_H))
                _text(sheet, f"c{cam}", x + 2, y + CELL_H - 4, 0.32, (255, 255, 255))
            else:
                cv2.rectangle(sheet, (x, y), (x + CELL_W - 1, y + CELL_H - 1), (215, 215, 215), 1)
    out = Path(path) if path is not None else world / "preview.png"
    if not cv2.imwrite(str(out), sheet):
        raise ReidTraceError(f"cannot write {out}", hint="check that the folder is writable")
    return out


def _text(img: np.ndarray, s: str, x: int, y: int, scale: float, color=(30, 30, 30)) -> None:
    cv2.putText(img, s[:44], (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _descriptions(path: Path) -> dict[int, str]:
    if not path.is_file():
        return {}
    with path.open() as f:
        return {int(r["id"]): r.get("description", "") for r in csv.DictReader(f)}
