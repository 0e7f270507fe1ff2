"""Reading footage: video files and folders of frames, with the facts ingestion needs.

One reader for both, so the rest of the pipeline sees ``(frame_idx, frame)`` pairs and a
``VideoInfo`` (fps, size, frame count, content hash). Files OpenCV cannot open, empty files and
truncated files are reported as ``ReidTraceError`` with the reason, never as a crash mid-way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid.errors import ReidTraceError

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_FRAME_FOLDER_FPS = 10.0


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    width: int
    height: int
    num_frames: int  # as counted by reading, or the container's claim for files
    content_hash: str  # sha256 of the file (or of the sorted frame files' bytes)
    is_frame_folder: bool


def content_hash(path: Path) -> str:
    """sha256 of a file or of a frame folder's files (names and bytes, in order)."""
    h = hashlib.sha256()
    files = _frame_files(path) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def probe(path: str | Path, *, fps: float | None = None) -> VideoInfo:
    """Open ``path`` (a video file or a folder of frames) and describe it; raise if unusable."""
    path = Path(path)
    if not path.exists():
        raise ReidTraceError(f"{path} does not exist", hint="check the path")
    if path.is_dir():
        files = _frame_files(path)
        if not files:
            raise ReidTraceError(
                f"{path} holds no image frames",
                hint=f"expected files ending in {sorted(IMAGE_EXTENSIONS)}",
            )
        first = cv2.imread(str(files[0]))
        if first is None:
            raise ReidTraceError(f"cannot read the first frame {files[0]}", hint="is it an image?")
        return VideoInfo(
            path,
            fps or DEFAULT_FRAME_FOLDER_FPS,
            first.shape[1],
            first.shape[0],
            len(files),
            content_hash(path),
            True,
        )
    if path.stat().st_size == 0:
        raise ReidTraceError(f"{path} is empty (0 bytes)", hint="re-copy the file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ReidTraceError(
                f"OpenCV cannot open {path} as a video", hint="is it a video file, and complete?"
            )
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ReidTraceError(f"{path} has no readable frame", hint="the file may be corrupt")
        claimed_fps = cap.get(cv2.CAP_PROP_FPS)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    use_fps = fps or (claimed_fps if 0 < claimed_fps < 1000 else None)
    if use_fps is None:
        raise ReidTraceError(f"{path} does not say its frame rate", hint="give it, e.g. --fps 10")
    return VideoInfo(
        path, float(use_fps), frame.shape[1], frame.shape[0], max(n, 1), content_hash(path), False
    )


def read_frames(info: VideoInfo, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_idx, frame)`` from ``start``; stops early (no error) at a truncated end.

    Seeking in compressed video is not frame-exact with every codec, so resuming reads and
    discards frames up to ``start`` (decoding is cheap next to detection).
    """
    if info.is_frame_folder:
        for k, f in enumerate(_frame_files(info.path)):
            if k < start:
                continue
            frame = cv2.imread(str(f))
            if frame is None:
                raise ReidTraceError(f"cannot read frame {f}", hint="the file may be corrupt")
            yield k, frame
        return
    cap = cv2.VideoCapture(str(info.path))
    try:
        k = 0
        while True:
            if k < start:
                if not cap.grab():
                    return
                k += 1
                continue
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield k, frame
            k += 1
    finally:
        cap.release()


def read_frames_at(path: str | Path, frame_idxs: Iterable[int]) -> dict[int, np.ndarray]:
    """The frames at ``frame_idxs`` of a video file or frame folder, keyed by index.

    For pictures of a few chosen moments (the trace report's evidence frames). A video is read
    in one forward pass that grabs every frame and decodes only the wanted ones: exact for every
    codec, where seeking (``CAP_PROP_POS_FRAMES``) is not. Indices past the end are simply
    absent from the result; a missing or unreadable file is a ``ReidTraceError``.
    """
    path = Path(path)
    wanted = sorted({int(k) for k in frame_idxs if int(k) >= 0})
    if not path.exists():
        raise ReidTraceError(f"{path} does not exist", hint="was the footage moved or deleted?")
    if not wanted:
        return {}
    if path.is_dir():
        files = _frame_files(path)
        out: dict[int, np.ndarray] = {}
        for k in wanted:
            if k < len(files) and (img := cv2.imread(str(files[k]))) is not None:
                out[k] = img
        return out
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ReidTraceError(
                f"OpenCV cannot open {path} as a video", hint="is it a video file, and complete?"
            )
        out = {}
        k = 0
        for target in wanted:
            while k < target and cap.grab():
                k += 1
            if k < target or not cap.grab():
                break  # the file ends before ``target``
            ok, frame = cap.retrieve()
            if ok and frame is not None:
                out[target] = frame
            k += 1
        return out
    finally:
        cap.release()
