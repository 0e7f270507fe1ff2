"""Market-1501-format folders: the real dataset as published, and the synthetic world's crops.

Layout (``gt_bbox/`` and ``gt_query/`` may exist and are ignored)::

    root/                      (or root/Market-1501-v15.09.15/, one level down)
        bounding_box_train/    training images
        bounding_box_test/     the gallery
        query/                 the queries

File names are ``PPPP_cCsS_FFFFFF_NN.jpg``: identity ``PPPP`` (4 digits; ``0000`` = distractor,
``-1`` = junk), camera ``C``, sequence ``S``, frame ``FFFFFF`` and box ``NN`` within the frame,
e.g. ``0002_c1s1_000451_03.jpg`` or ``-1_c1s1_000401_03.jpg``. The synthetic world writes names
with :func:`market_name`, so reading them back with :func:`parse_market_name` must round-trip.

Non-image files (the real copy has ``Thumbs.db``) and hidden files (``._*`` from macOS archives)
are skipped silently; image files with any other name are an error, because silently dropping
them would change the benchmark.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid.errors import ReidTraceError

__all__ = [
    "MarketDataset",
    "MarketImage",
    "market_name",
    "parse_market_name",
    "read_market",
]

SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
"""Our split names -> the folder names of the published dataset."""

_NAME = re.compile(r"^(-1|\d{4})_c(\d+)s(\d+)_(\d{6})_(\d{2})\.(jpg|jpeg|png)$", re.IGNORECASE)
_EXTS = ("jpg", "jpeg", "png")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
_EXAMPLE = "0002_c1s1_000451_03.jpg"


@dataclass(frozen=True)
class MarketImage:
    """One crop and the labels its file name carries."""

    path: Path
    pid: int  # identity; 0 = distractor, -1 = junk
    camid: int  # camera, 1-based as in the file name
    seq: int
    frame: int
    box: int


@dataclass
class MarketDataset:
    """The three splits of a Market-1501-format folder, each sorted by file name."""

    root: Path  # the folder that holds the split folders
    train: list[MarketImage]
    query: list[MarketImage]
    gallery: list[MarketImage]

    @property
    def num_train_pids(self) -> int:
        """Identities to train a classifier on (distractors 0 and junk -1 are not identities)."""
        return len({im.pid for im in self.train if im.pid > 0})

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(pids, camids)`` int64 arrays of one split, in list order, for ``evaluate_rank``."""
        if split not in SPLIT_DIRS:
            raise ReidTraceError(
                f"unknown Market split {split!r}", hint=f"use one of {sorted(SPLIT_DIRS)}"
            )
        images: list[MarketImage] = getattr(self, split)
        pids = np.array([im.pid for im in images], dtype=np.int64)
        camids = np.array([im.camid for im in images], dtype=np.int64)
        return pids, camids


def parse_market_name(name: str) -> tuple[int, int, int, int, int]:
    """``(pid, camid, seq, frame, box)`` from a file name (a path's directories are ignored)."""
    base = Path(name).name
    m = _NAME.match(base)
    if m is None:
        raise ReidTraceError(
            f"{base!r} is not a Market-1501 file name",
            hint=f"expected PPPP_cCsS_FFFFFF_NN.jpg, e.g. {_EXAMPLE!r} or '-1_c1s1_000401_03.jpg'",
        )
    pid = int(m.group(1))
    camid = int(m.group(2))
    if camid < 1:
        raise ReidTraceError(
            f"{base!r} has camera c{camid}; Market cameras are numbered from 1",
            hint=f"name files like {_EXAMPLE!r}",
        )
    return pid, camid, int(m.group(3)), int(m.group(4)), int(m.group(5))


def market_name(pid: int, camid: int, seq: int, frame: int, box: int, ext: str = "jpg") -> str:
    """The Market-1501 file name for these labels (inverse of :func:`parse_market_name`).

    Values that the format cannot hold raise ``ValueError``: the writer is our own code (the
    synthetic world), so an out-of-range value is a bug there, not user input.
    """
    if pid != -1 and not 0 <= pid <= 9999:
        raise ValueError(f"pid must be -1 or in 0..9999, got {pid}")
    if camid < 1:
        raise ValueError(f"camid must be >= 1, got {camid}")
    if seq < 0:
        raise ValueError(f"seq must be >= 0, got {seq}")
    if not 0 <= frame <= 999_999:
        raise ValueError(f"frame must be in 0..999999, got {frame}")
    if not 0 <= box <= 99:
        raise ValueError(f"box must be in 0..99, got {box}")
    if ext.lower() not in _EXTS:
        raise ValueError(f"ext must be one of {_EXTS}, got {ext!r}")
    pid_str = "-1" if pid == -1 else f"{pid:04d}"
    return f"{pid_str}_c{camid}s{seq}_{frame:06d}_{box:02d}.{ext}"


def read_market(root: str | Path, *, require_train: bool = True) -> MarketDataset:
    """Read a Market-1501-format folder; ``require_train=False`` for evaluation-only copies.

    Query identities that never appear in the gallery are fine here: the evaluation skips them.
    """
    base = _find_root(Path(root), require_train=require_train)
    splits: dict[str, list[MarketImage]] = {}
    for split, folder in SPLIT_DIRS.items():
        path = base / folder
        if split == "train" and not require_train and not path.is_dir():
            splits[split] = []
            continue
        images = _read_split(path)
        if not images and (split != "train" or require_train):
            raise ReidTraceError(
                f"Market split folder {str(path)!r} holds no images",
                hint="the download or extraction may be incomplete; extract the archive again",
            )
        splits[split] = images
    return MarketDataset(root=base, **splits)


def _find_root(root: Path, *, require_train: bool) -> Path:
    """The folder that holds the splits: ``root`` itself or its one dataset subfolder."""
    if not root.exists():
        raise ReidTraceError(
            f"Market folder {str(root)!r} does not exist",
            hint="pass the folder that contains bounding_box_train/, bounding_box_test/, query/",
        )
    if not root.is_dir():
        raise ReidTraceError(
            f"Market root {str(root)!r} is a file, not a folder",
            hint="extract the archive and pass the extracted folder",
        )
    needed = [SPLIT_DIRS["query"], SPLIT_DIRS["gallery"]]
    if require_train:
        needed.insert(0, SPLIT_DIRS["train"])

    def missing(folder: Path) -> list[str]:
        return [n for n in needed if not (folder / n).is_dir()]

    if not missing(root):
        return root
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    candidates = [p for p in subdirs if not missing(p)]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        names = [p.name for p in candidates]
        raise ReidTraceError(
            f"Market folder {str(root)!r} holds several datasets: {names}",
            hint="pass the one you mean as the root",
        )
    present = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    shown = present[:20] + (["..."] if len(present) > 20 else [])
    raise ReidTraceError(
        f"Market folder {str(root)!r} lacks {', '.join(n + '/' for n in missing(root))}; "
        f"it contains {shown or 'nothing'}",
        hint="pass the folder that contains bounding_box_train/, bounding_box_test/ and query/"
        + ("" if require_train else " (bounding_box_train/ is optional here)"),
    )


def _read_split(folder: Path) -> list[MarketImage]:
    """Images of one split folder, sorted by name; bad image names are collected and reported."""
    if not folder.is_dir():
        raise ReidTraceError(
            f"{str(folder)!r} is not a folder", hint="extract the Market-1501 archive again"
        )
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if e.is_file() and not e.name.startswith("."))
    images: list[MarketImage] = []
    bad: list[str] = []
    for name in names:
        if Path(name).suffix.lower() not in _IMAGE_SUFFIXES:
            continue  # Thumbs.db, readme files, ...
        m = _NAME.match(name)
        if m is None or int(m.group(2)) < 1:
            bad.append(name)
            continue
        pid, camid, seq, frame, box = parse_market_name(name)
        images.append(MarketImage(folder / name, pid, camid, seq, frame, box))
    if bad:
        raise ReidTraceError(
            f"{len(bad)} image(s) in {str(folder)!r} are not named like Market-1501 files, "
            f"e.g. {bad[:5]}",
            hint=f"names must look like {_EXAMPLE!r} (identity_cCAMsSEQ_FRAME_BOX.jpg, "
            "identity -1 for junk); rename or remove them",
        )
    return images
