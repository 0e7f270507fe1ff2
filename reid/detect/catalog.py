"""Named detector models: what each is, where it officially comes from, and whether it is here.

The bundled NanoDet ships inside the package (always installed). Better models whose files may
not be redistributed with the product (YOLOX-Nano: a third-party download) are installed by the
user from their official source into a models folder (``<home>/models``, chosen by the caller:
library code takes the folder as an argument). Each entry pins the sha256 of the file we
measured, so ``install_model`` can tell the user they have exactly that file; another export of
the same weights differs byte for byte, so it is accepted only with ``force_hash=True`` and
after it found people on a rendered test card (``sanity_check``).

``resolve_detector`` turns the detector name of a config (``auto``, a catalogue name, or any
``create_detector`` name) into what to build, and one line that says which model runs; ``auto``
picks the best installed model (highest ``rank``).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reid.boxes import box_iou
from reid.detect import create_detector
from reid.detect.yolox import input_size_for
from reid.errors import ReidTraceError

__all__ = [
    "AUTO",
    "CATALOG",
    "DetectorModel",
    "ResolvedDetector",
    "best_installed",
    "file_sha256",
    "install_model",
    "installed_path",
    "list_models",
    "resolve_detector",
    "sanity_check",
]

AUTO = "auto"


@dataclass(frozen=True)
class DetectorModel:
    """One named detector model: enough to find, check, cite and build it."""

    name: str
    detector: str  # the ``create_detector`` name that runs it
    about: str
    licence: str
    source: str  # official source, for the user to download from
    input_size: tuple[int, int]  # (H, W) it was exported with
    rank: int  # ``auto`` prefers the installed model with the highest rank
    file_name: str | None = None  # None: bundled with the package
    sha256: str | None = None  # of the file we measured (docs/detection.md)
    resizable: bool = False  # runs at any multiple of 32 (per-camera input size)

    @property
    def bundled(self) -> bool:
        return self.file_name is None


CATALOG: dict[str, DetectorModel] = {
    m.name: m
    for m in (
        DetectorModel(
            name="yolox-nano",
            detector="yolox",
            about="YOLOX-Nano COCO detector, float (0.91 M parameters); PETS recall 0.92 at "
            "precision 0.92, about as fast as the bundled NanoDet INT8",
            licence="Apache-2.0 (Megvii-BaseDetection/YOLOX)",
            source="https://github.com/Megvii-BaseDetection/YOLOX/releases/tag/0.1.1rc0 "
            "(asset yolox_nano.onnx)",
            input_size=(416, 416),
            rank=20,
            file_name="yolox_nano.onnx",
            sha256="695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
            resizable=True,
        ),
        DetectorModel(
            name="nanodet",
            detector="nanodet",
            about="NanoDet-m COCO detector, INT8, bundled (reid/weights/NANODET.md): the "
            "fallback that needs no download",
            licence="Apache-2.0 (RangiLyu/nanodet)",
            source="bundled with reidtrace",
            input_size=(416, 416),
            rank=10,
        ),
    )
}


def _model(name: str) -> DetectorModel:
    key = name.strip().lower().replace("_", "-")
    if key not in CATALOG:
        raise ReidTraceError(
            f"unknown detector model {name!r}",
            hint=f"known models: {', '.join(CATALOG)} (see `reidtrace detectors`)",
        )
    return CATALOG[key]


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed_path(model: DetectorModel, models_dir: Path | None) -> Path | None:
    """Where ``model``'s file is installed, or None (bundled models have no file here)."""
    if model.bundled or models_dir is None:
        return None
    path = Path(models_dir).expanduser() / str(model.file_name)
    return path if path.is_file() else None


def list_models(models_dir: Path | None) -> list[dict[str, Any]]:
    """Every catalogue entry with whether it is installed, where, and whether the installed
    file is the pinned one (``hash_ok``), best first."""
    rows = []
    for m in sorted(CATALOG.values(), key=lambda m: -m.rank):
        path = installed_path(m, models_dir)
        rows.append(
            {
                "name": m.name,
                "about": m.about,
                "licence": m.licence,
                "source": m.source,
                "sha256": m.sha256,
                "input_size": list(m.input_size),
                "installed": m.bundled or path is not None,
                "path": None if path is None else str(path),
                "hash_ok": None if path is None else file_sha256(path) == m.sha256,
            }
        )
    return rows


def best_installed(models_dir: Path | None) -> DetectorModel:
    """The installed model ``auto`` runs: the highest rank (a bundled one is always here)."""
    here = [m for m in CATALOG.values() if m.bundled or installed_path(m, models_dir)]
    return max(here, key=lambda m: m.rank)


@dataclass(frozen=True)
class ResolvedDetector:
    """What to build (``create_detector(name, **options)``) and the line that says so."""

    name: str
    options: dict[str, Any]
    note: str


def resolve_detector(
    name: str,
    options: dict[str, Any] | None = None,
    models_dir: Path | None = None,
    frame_hw: tuple[int, int] | None = None,
) -> ResolvedDetector:
    """``auto`` -> the best installed model; a catalogue name -> its installed file; any other
    name unchanged. For a resizable model and a known ``frame_hw`` the input size is the
    camera's own (``yolox.input_size_for``) unless ``options`` set one.
    """
    options = dict(options or {})
    key = name.strip().lower().replace("_", "-")
    if key == AUTO:
        model = best_installed(models_dir)
        how = f"auto: best installed of {', '.join(CATALOG)}"
    elif key in CATALOG:
        model, how = CATALOG[key], "chosen"
    else:
        return ResolvedDetector(name, options, f"detector: {name} (chosen)")
    if not model.bundled:
        path = installed_path(model, models_dir)
        if path is None:
            raise ReidTraceError(
                f"detector model {model.name!r} is not installed"
                + (f" in {models_dir}" if models_dir is not None else ""),
                hint=f"download it from {model.source}, then run `reidtrace detectors install "
                f"{model.name} FILE`; or use --detector auto (the bundled NanoDet)",
            )
        options.setdefault("path", str(path))
    size = model.input_size
    if model.resizable:
        if "input_size" not in options and frame_hw is not None:
            options["input_size"] = input_size_for(frame_hw)
        size = options.get("input_size", size)
        size = (size, size) if isinstance(size, int) else tuple(size)
        if "input_size" in options:
            options["input_size"] = size
    where = "bundled" if model.bundled else options["path"]
    note = f"detector: {model.name} ({how}; {where}; input {size[0]}x{size[1]})"
    return ResolvedDetector(model.detector, options, note)


def _test_card() -> tuple[np.ndarray, np.ndarray]:
    """A rendered street scene with five people of known boxes (the synthetic world's renderer):
    a check that needs no file that a user might not have."""
    from reid.synth.appearance import sample_appearances
    from reid.synth.figure import render_figure
    from reid.synth.render import composite
    from reid.synth.site import RIGS, render_background

    cam = RIGS[0].camera(480, 360)
    frame, _ = render_background(cam, seed=3)
    people = sample_appearances(5, np.random.default_rng(11))
    spots = ((70, 300, 150), (160, 330, 190), (250, 280, 130), (340, 320, 170), (420, 260, 110))
    boxes = []
    for app, (u, v, height), view in zip(people, spots, (0, 60, 180, 250, 300), strict=True):
        sprite = render_figure(app, height_px=height, view_deg=view, phase=0.3, seed=1)
        x0, y0 = int(round(u - sprite.foot[0])), int(round(v - sprite.foot[1]))
        composite(frame, x0, y0, sprite.rgb, sprite.alpha)
        ys, xs = np.nonzero(sprite.alpha > 0.5)
        boxes.append([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1])
    return frame, np.asarray(boxes, np.float32)


def sanity_check(detector: Any, min_found: int = 3) -> tuple[int, int]:
    """``(found, people)`` on the test card; raises unless ``detector`` finds ``min_found``.

    What a file of unknown hash must pass before it is installed: a model that loads but
    decodes nothing (wrong family, wrong preprocessing, a broken export) fails here.
    """
    frame, truth = _test_card()
    dets = detector.detect(frame, 0)
    iou = box_iou(np.asarray(dets.xyxy, np.float32), truth)
    found = int((iou >= 0.5).any(axis=0).sum()) if len(dets) else 0
    if found < min_found:
        raise ReidTraceError(
            f"the model found {found} of the {len(truth)} people on the test card "
            f"(needs {min_found}): it does not decode as this detector family",
            hint="download the official file named by `reidtrace detectors` and install it "
            "without --force-hash",
        )
    return found, len(truth)


def install_model(
    name: str, file: Path, models_dir: Path, *, force_hash: bool = False
) -> dict[str, Any]:
    """Copy ``file`` into ``models_dir`` as catalogue model ``name`` after checking its sha256.

    A file with another hash is refused unless ``force_hash``, and even then it must find
    people on the test card first. Returns what was installed (path, hash, whether it matched).
    """
    model = _model(name)
    if model.bundled:
        raise ReidTraceError(
            f"{model.name!r} is bundled with reidtrace and always installed",
            hint="install another model (see `reidtrace detectors`)",
        )
    file = Path(file).expanduser()
    if not file.is_file():
        raise ReidTraceError(
            f"{str(file)!r} is not a file",
            hint=f"download {model.file_name} from {model.source} and pass its path",
        )
    digest = file_sha256(file)
    matched = digest == model.sha256
    if not matched and not force_hash:
        raise ReidTraceError(
            f"{file.name} has sha256 {digest}, not the pinned {model.sha256} of {model.name}",
            hint=f"download the official file from {model.source}; for another export of the "
            "same weights pass --force-hash (it must then find people on a test card)",
        )
    found = None
    if not matched:
        options = {"path": str(file), "threads": 1}
        if model.resizable:
            options["input_size"] = model.input_size
        try:
            detector = create_detector(model.detector, **options)
        except ReidTraceError as err:
            raise ReidTraceError(
                f"{file.name} is not a usable {model.name} model: {err.message}",
                hint=f"download the official file from {model.source}",
            ) from err
        found = sanity_check(detector)[0]
    target = Path(models_dir).expanduser() / str(model.file_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(file, partial)
    partial.replace(target)  # atomic: a killed copy never looks installed
    return {
        "name": model.name,
        "path": str(target),
        "sha256": digest,
        "hash_ok": matched,
        "test_card_found": found,
    }
