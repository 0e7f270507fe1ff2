"""The file protocol of a vector index: the manifest beside it, atomic replacement, the lock.

``index.faiss`` and ``index.faiss.manifest.json`` beside it (factory, search params, metric,
dim, the id of the model whose vectors it holds, count, generation, time, size and sha256 of the
index file). Both are replaced atomically (temporary file in the same folder, fsync, rename,
fsync of the folder); the checksum catches a crash between the two renames, and a reader refuses
an index that does not match its manifest or what the caller expects (dim, metric, model).

Writers take an exclusive ``flock`` on ``index.faiss.lock`` (:func:`index_lock`); readers load a
consistent pair (:func:`read_checked_manifest`) and can poll :func:`read_manifest` to notice a
new generation. Nothing here knows FAISS: the index is serialised by a callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ValidationError

from reid.errors import ReidTraceError

__all__ = [
    "FORMAT",
    "LEGACY_MODEL",
    "IndexExpectation",
    "IndexManifest",
    "check_expectation",
    "index_lock",
    "manifest_path",
    "model_mismatch_error",
    "read_checked_manifest",
    "read_manifest",
    "rebuild_hint",
    "write_atomically",
]

FORMAT = 1
LEGACY_MODEL = "default"
"""The model name every vector was stored under before vectors carried their model's identity
(``reid.embed.model_identity``): which file made such a vector is unknown (``--model`` was not
recorded), so they are never taken for any model's and never mixed with identified ones."""


def manifest_path(path: str | Path) -> Path:
    """Where the manifest of the index at ``path`` lives (``<name>.manifest.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


class IndexManifest(BaseModel):
    """What an index file holds and how it was built; written beside it on every save.

    ``embedder`` is the identity of the model whose vectors the index holds
    (``OnnxEmbedder.model_id``, ``"<arch>-<sha256[:12]>"``).
    """

    format: int = FORMAT
    factory: str
    search_params: str
    metric: Literal["ip", "l2"]
    dim: int
    embedder: str
    count: int
    generation: int
    created: AwareDatetime
    size: int
    sha256: str
    faiss_version: str


@dataclass(frozen=True)
class IndexExpectation:
    """What the caller needs from a stored index; ``None`` fields are not checked.

    ``embedder`` is the id of the model that will search the index or add to it.
    """

    dim: int | None = None
    metric: str | None = None
    embedder: str | None = None
    factory: str | None = None


def rebuild_hint(path: Path) -> str:
    """The way out of a broken or stale index file: SQL rebuilds it."""
    return (
        f"delete {path} and {manifest_path(path).name}; the next sync rebuilds the index from "
        "the database (the source of truth)"
    )


def _bundled_name(model_id: str) -> str | None:
    """How a user names ``model_id`` when it is one of the bundled models: ``default`` (the
    default embedder) or the path of ``source_fp32.onnx`` (the FP32 model the default was
    compressed from, itself the default before). None for any other model."""
    from reid.embed import DEFAULT_MODEL, SOURCE_MODEL, model_identity

    for name, path in (("default", DEFAULT_MODEL), (str(SOURCE_MODEL), SOURCE_MODEL)):
        with contextlib.suppress(ReidTraceError, OSError):
            if path.is_file() and model_identity(path) == model_id:
                return name
    return None


def model_mismatch_error(
    what: str, built: str, configured: str, *, index_path: Path | None = None
) -> ReidTraceError:
    """The error for ``what`` (the database, or the index at ``index_path``) holding vectors of
    model ``built`` when the caller works with model ``configured``.

    The way out is ``reidtrace reembed`` (every sighting's vector again from its thumbnail with
    the configured model, then the index), or configuring the model the vectors came from;
    ``index rebuild`` only re-reads the stored vectors. The bundled models are named as the
    user names them, so a store embedded by the previous default (``source_fp32.onnx`` now)
    gets a hint that can be pasted.
    """
    target = _bundled_name(configured) or "FILE.onnx"
    reembed = (
        f"to switch the store to {configured!r}, run `reidtrace reembed --model {target}`"
        + ("" if target != "FILE.onnx" else f" with the file whose id is {configured!r}")
        + " (re-embeds every sighting from its stored crop, then rebuilds the index)"
    )
    if built == LEGACY_MODEL:
        message = (
            f"{what} holds vectors stored before vectors named their model (model "
            f"{LEGACY_MODEL!r}: which file made them is unknown), and the configured model is "
            f"{configured!r}"
        )
        hint = reembed + (
            "; or ingest the footage again into a new database and index path "
            "(REIDTRACE_DATABASE_URL, REIDTRACE_INDEX_PATH)"
        )
    else:
        message = (
            f"{what} holds vectors of model {built!r}, but the configured model is "
            f"{configured!r}; vectors of two models are not comparable"
        )
        keep = _bundled_name(built) or (
            f"the file whose id is {built!r} (the 'arch' metadata and the first 12 hex digits "
            "of the file's sha256)"
        )
        hint = f"{reembed}; or, to keep using its vectors, set --model / reid_model to {keep}"
    if index_path is not None:
        hint += f"; if the database holds no vectors of {built!r}, {rebuild_hint(index_path)}"
    return ReidTraceError(message, hint=hint)


def read_manifest(path: str | Path) -> IndexManifest:
    """The manifest beside the index at ``path`` (cheap: poll it to notice a new generation)."""
    mpath = manifest_path(path)
    try:
        return IndexManifest.model_validate_json(mpath.read_bytes())
    except FileNotFoundError as err:
        raise ReidTraceError(
            f"the vector index {path} has no manifest ({mpath.name})",
            hint=rebuild_hint(Path(path)),
            status=404,
        ) from err
    except (ValidationError, ValueError) as err:
        raise ReidTraceError(
            f"the manifest {mpath} is unreadable: {err}".splitlines()[0],
            hint=rebuild_hint(Path(path)),
        ) from err


def check_expectation(path: Path, got: IndexManifest, expect: IndexExpectation | None) -> None:
    """Refuse an index that another model built, or of another dim, metric or factory."""
    if expect is None:
        return
    if expect.embedder is not None and got.embedder != expect.embedder:
        raise model_mismatch_error(
            f"the vector index {path}", got.embedder, expect.embedder, index_path=path
        )
    wrong = [
        f"{name} {getattr(got, name)!r} (expected {want!r})"
        for name in ("dim", "metric", "factory")
        if (want := getattr(expect, name)) is not None and getattr(got, name) != want
    ]
    if wrong:
        raise ReidTraceError(
            f"the vector index {path} does not fit: " + ", ".join(wrong),
            hint=rebuild_hint(path) + "; or set index.* back to what it was built with",
        )


# --- files ---------------------------------------------------------------------------------


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder for fsync
        return
    _fsync_file(path)


def _digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _temp_beside(path: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def index_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock for writers of the index at ``path`` (POSIX ``flock``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: single writer assumed
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_atomically(
    path: Path,
    write_index: Callable[[Path], None],
    describe: Callable[[int, str], IndexManifest],
) -> IndexManifest:
    """Replace the index at ``path`` and its manifest, each in one rename.

    ``write_index(dest)`` serialises the index into a temporary file beside ``path``;
    ``describe(size, sha256)`` makes the manifest of what was written. The old pair stays intact
    until the new files are complete on disk; a failure leaves no temporary files behind.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReidTraceError(
            f"cannot create the folder for the vector index {path}: {err}",
            hint="point index_path (REIDTRACE_INDEX_PATH) at a writable place",
        ) from err
    tmp_index = tmp_manifest = None
    try:
        tmp_index = _temp_beside(path, ".tmp")
        write_index(tmp_index)
        _fsync_file(tmp_index)
        manifest = describe(*_digest(tmp_index))
        tmp_manifest = _temp_beside(path, ".json.tmp")
        with tmp_manifest.open("w", encoding="utf-8") as f:
            f.write(manifest.model_dump_json(indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_index, path)
        tmp_index = None
        os.replace(tmp_manifest, manifest_path(path))
        tmp_manifest = None
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as err:
        raise ReidTraceError(
            f"cannot write the vector index {path}: {err}".splitlines()[0],
            hint="check free disk space and permissions; the previous index is unchanged",
        ) from err
    finally:
        for tmp in (tmp_index, tmp_manifest):
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    return manifest


def read_checked_manifest(path: Path, *, check_hash: bool = True) -> IndexManifest:
    """The manifest of the index at ``path``, once the file is known to be the one it describes.

    A writer may replace the pair between the two reads, so a mismatch is retried; one that
    persists is an interrupted write or an edited file. ``check_hash=False`` compares sizes only.
    """
    if not path.exists():
        raise ReidTraceError(
            f"no vector index at {path}",
            hint="ingest a video, or run a sync to build it from the database",
            status=404,
        )
    for _attempt in range(3):
        manifest = read_manifest(path)
        size, sha = _digest(path) if check_hash else (path.stat().st_size, manifest.sha256)
        if (size, sha) == (manifest.size, manifest.sha256):
            return manifest
        if read_manifest(path) == manifest:
            raise ReidTraceError(
                f"the vector index {path} does not match its manifest (size {size} vs "
                f"{manifest.size}): an interrupted write or an edited file",
                hint=rebuild_hint(path),
            )
    raise ReidTraceError(  # pragma: no cover - three concurrent rewrites in a row
        f"the vector index {path} kept changing while loading"
    )
