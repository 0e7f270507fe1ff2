"""Calibration crops for post-training INT8 quantization: which images, and how they are fed.

Static quantization fixes each activation's range once, from sample inputs; ranges taken on the
wrong kind of picture (ImageNet photos, random noise) clip or waste the 256 levels of the
training domain's activations. So calibration reads real person crops of the training domain:
a Market-1501-format folder (its ``bounding_box_train/``, the crops the model learnt from; the
test splits are never touched, so evaluation stays clean) or any folder of crops. A fixed-seed
sample spreads over the whole folder, and the crops are preprocessed exactly as the embedder
does it (``reid.embed.preprocess_crops``, the model's own input contract), so the quantizer sees
the tensors the deployed model will see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from reid.embed import InputContract, preprocess_crops, read_image
from reid.errors import ReidTraceError

__all__ = ["CropReader", "find_crops", "sample_crops"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
Progress = Callable[[str, int, int], None]


def find_crops(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """The calibration images of ``source``, sorted.

    ``source`` is a Market-format folder (its ``bounding_box_train/`` is used; a dataset nested
    one level down, as the published Market-1501 archive unpacks, is found too), any folder of
    crops (searched recursively), or a list of image paths. No image is a user error.
    """
    if isinstance(source, str | Path):
        root = Path(source).expanduser()
        if not root.is_dir():
            what = "is a file" if root.exists() else "does not exist"
            raise ReidTraceError(
                f"calibration folder {str(root)!r} {what}",
                hint="pass a folder of person crops or a Market-format folder "
                "(e.g. `reidtrace synth DIR --crops-only`, then DIR/market)",
            )
        train = [p for p in (root / "bounding_box_train", *root.glob("*/bounding_box_train"))]
        folder = next((p for p in train if p.is_dir()), root)
        paths = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
        where = str(folder)
    else:
        paths = [Path(p) for p in source]
        where = "the given list"
    if not paths:
        raise ReidTraceError(
            f"no calibration images in {where}",
            hint="calibration needs real crops of the training domain (.jpg/.png), e.g. the "
            "bounding_box_train/ of `reidtrace synth DIR --crops-only`",
        )
    return paths


def sample_crops(paths: Sequence[Path], n: int, *, seed: int = 0) -> list[Path]:
    """``n`` paths drawn without replacement with a fixed seed (all of them when fewer), in
    folder order: a Market folder is sorted by identity, so a random draw covers many people
    where the first ``n`` files would hold a handful."""
    if n < 1:
        raise ReidTraceError(f"the number of calibration crops must be >= 1, got {n}", hint="256")
    if len(paths) <= n:
        return list(paths)
    pick = np.random.default_rng(seed).choice(len(paths), size=n, replace=False)
    return [paths[i] for i in sorted(pick)]


class CropReader(CalibrationDataReader):
    """Feeds preprocessed crops to ONNX Runtime's calibrator, ``batch_size`` at a time.

    Implements ``__len__`` and ``set_range`` (in batches) so the calibrator can be run one
    batch per call (``CalibStridedMinMax``): the histogram calibrators otherwise keep every
    intermediate activation of every batch in memory at once (gigabytes at 256x128). Images
    are decoded once and kept as the network input (256 crops at 256x128: 100 MB).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        contract: InputContract,
        input_name: str,
        *,
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> None:
        if batch_size < 1:
            raise ReidTraceError(f"batch size must be >= 1, got {batch_size}", hint="try 8")
        self.input_name = input_name
        batches: list[np.ndarray] = []
        for lo in range(0, len(paths), batch_size):
            chunk = paths[lo : lo + batch_size]
            batches.append(preprocess_crops([read_image(p) for p in chunk], contract))
            if progress:
                progress("reading calibration crops", lo + len(chunk), len(paths))
        self.batches = batches
        self.start, self.end = 0, len(batches)
        self._pos = 0
        self._progress = progress

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end = start_index, min(end_index, len(self.batches))
        self._pos = self.start

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= self.end:
            return None
        x = self.batches[self._pos]
        self._pos += 1
        if self._progress:
            self._progress("calibrating", self._pos, len(self.batches))
        return {self.input_name: x}

    def rewind(self) -> None:
        self._pos = self.start

    def images(self) -> np.ndarray:
        """All preprocessed crops, (n, 3, H, W) float32."""
        return np.concatenate(self.batches)
