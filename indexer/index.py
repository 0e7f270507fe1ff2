"""The FAISS vector index: a persisted, rebuildable cache of the ``sighting`` table.

SQL is the source of truth. The index holds one vector per sighting of one embedder, under
the sighting's id, so a hit joins straight to its row. Anything the index gets wrong (a crash
between the SQL commit and the index write, a lost file, a changed factory) is healed from SQL:
:func:`sync_index` adds what is missing and removes what is stray (ingestion runs it after
each video and the app at start-up), :func:`rebuild_index` starts over, :func:`verify_index`
only reports.

Structure comes from a FAISS factory string (``IndexSettings.factory``) and search knobs from a
second string (``search_params``, e.g. ``"nprobe=16"``). Two adjustments keep ids right:

* IVF indexes take ids natively, so a leading ``IDMap,``/``IDMap2,`` before an IVF is dropped:
  FAISS's ``IndexIDMap`` over an IVF returns wrong ids after ``remove_ids`` (the IVF keeps the
  old positions while the id map is compacted). The IVF gets a hash-table direct map, so ids can
  be removed and vectors reconstructed.
* Everything else is wrapped in ``IDMap2`` (added when the string lacks it), which supports
  removal where the inner index does (``Flat``; not ``HNSW``, which ``sync_index`` rebuilds).

Files: ``index.faiss`` and ``index.faiss.manifest.json`` beside it (factory, search params,
metric, dim, embedder, count, generation, time, size and sha256 of the index file). Both are
replaced atomically (temporary file in the same folder, fsync, rename, fsync of the folder);
the checksum catches a crash between the two renames, and :meth:`FaissIndex.load` refuses an
index that does not match its manifest or what the caller expects (dim, metric, embedder).
The ``index_state`` row records the generation last written, so ``verify_index`` can tell an
old or restored file from the current one.

Concurrency: writers (``sync_index``, ``rebuild_index``) take an exclusive ``flock`` on
``index.faiss.lock``; readers load a consistent pair and can poll :func:`read_manifest` to
notice a new generation. A ``FaissIndex`` object may serve concurrent searches but must not
be searched while it is being modified.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
from pydantic import AwareDatetime, BaseModel, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from indexer.store import repo
from indexer.store.models import Sighting, utcnow
from reid.errors import ReidTraceError
from reid.settings import IndexSettings

__all__ = [
    "FaissIndex",
    "IndexExpectation",
    "IndexManifest",
    "SyncReport",
    "VerifyReport",
    "create_index",
    "manifest_path",
    "read_manifest",
    "rebuild_index",
    "sync_index",
    "verify_index",
]

METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
FORMAT = 1
FACTORY_HINT = 'try "IDMap2,Flat" (exact), or "IVF4096,PQ32" for large galleries'
EXACT_ATOL = 1e-4  # float32 round trip through an exact index
LOSSY_MIN_COSINE = 0.5  # a compressed code still points the right way; a wrong vector does not


def _faiss_reason(err: Exception) -> str:
    """FAISS's own words without the C++ location ("Error in ... at file.cpp:123: ...")."""
    text = str(err).strip()
    match = re.search(r"\.(?:cpp|h):\d+: (.*)", text, flags=re.S)
    return (match.group(1) if match else text).strip().splitlines()[0]


def manifest_path(path: str | Path) -> Path:
    """Where the manifest of the index at ``path`` lives (``<name>.manifest.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".manifest.json")


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class IndexManifest(BaseModel):
    """What an index file holds and how it was built; written beside it on every save."""

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
    """What the caller needs from a stored index; ``None`` fields are not checked."""

    dim: int | None = None
    metric: str | None = None
    embedder: str | None = None
    factory: str | None = None


def read_manifest(path: str | Path) -> IndexManifest:
    """The manifest beside the index at ``path`` (cheap: poll it to notice a new generation)."""
    mpath = manifest_path(path)
    try:
        return IndexManifest.model_validate_json(mpath.read_bytes())
    except FileNotFoundError as err:
        raise ReidTraceError(
            f"the vector index {path} has no manifest ({mpath.name})",
            hint=_rebuild_hint(Path(path)),
            status=404,
        ) from err
    except (ValidationError, ValueError) as err:
        raise ReidTraceError(
            f"the manifest {mpath} is unreadable: {err}".splitlines()[0],
            hint=_rebuild_hint(Path(path)),
        ) from err


def _rebuild_hint(path: Path) -> str:
    return (
        f"delete {path} and {manifest_path(path).name}; the next sync rebuilds the index from "
        "the database (the source of truth)"
    )


# --- files ---------------------------------------------------------------------------------


def _write_index_file(index: faiss.Index, dest: Path) -> None:
    """Serialise ``index`` into ``dest`` (a separate function so tests can make it fail)."""
    faiss.write_index(index, str(dest))


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
def _locked(path: Path) -> Iterator[None]:
    """Exclusive advisory lock for writers of the index at ``path`` (POSIX ``flock``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: single writer assumed
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock_path(path).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- the index -----------------------------------------------------------------------------


def _build(dim: int, factory: str, metric: str) -> faiss.Index:
    body = factory.strip()
    for prefix in ("IDMap2,", "IDMap,"):
        if body.startswith(prefix):
            body = body.removeprefix(prefix)
            break
    try:
        inner = faiss.index_factory(dim, body, METRICS[metric])
        ivf = faiss.try_extract_index_ivf(inner)
        if ivf is not None:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            return inner
        return faiss.index_factory(dim, "IDMap2," + body, METRICS[metric])
    except RuntimeError as err:
        raise ReidTraceError(
            f"FAISS cannot build index.factory={factory!r} for {dim}-d vectors: "
            f"{_faiss_reason(err)}",
            hint=FACTORY_HINT,
        ) from err


def _apply_search_params(index: faiss.Index, params: str, factory: str) -> None:
    if not params.strip():
        return
    try:
        faiss.ParameterSpace().set_index_parameters(index, params)
    except RuntimeError as err:
        raise ReidTraceError(
            f"FAISS cannot apply index.search_params={params!r} to index.factory={factory!r}: "
            f"{_faiss_reason(err)}",
            hint='IVF indexes take "nprobe=16", HNSW "efSearch=64"; leave it empty for Flat',
        ) from err


def _stores_exact_vectors(index: faiss.Index) -> bool:
    """Whether ``reconstruct`` returns the added float32 vectors (Flat storage) or codes."""
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexIDMap):
        idx = faiss.downcast_index(idx.index)
    if isinstance(idx, faiss.IndexIVFFlat):
        return True
    if isinstance(idx, faiss.IndexHNSW):
        idx = faiss.downcast_index(idx.storage)
    return isinstance(idx, faiss.IndexFlat)


class FaissIndex:
    """``VectorIndex`` over FAISS with sighting ids, training, removal and safe persistence.

    ``embedder`` names the model whose vectors it holds; it is recorded in the manifest and
    checked on load, because vectors of different embedders are not comparable.
    """

    def __init__(
        self,
        dim: int,
        *,
        factory: str = "IDMap2,Flat",
        search_params: str = "",
        metric: str = "ip",
        embedder: str = "",
    ) -> None:
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise ReidTraceError(f"vector dimension must be a positive integer, got {dim!r}")
        if metric not in METRICS:
            raise ReidTraceError(
                f"index.metric={metric!r} is not one of {sorted(METRICS)}",
                hint='"ip" (cosine on unit-length embeddings) or "l2"',
            )
        self.factory = factory
        self.metric = metric
        self.embedder = embedder
        self.search_params = search_params
        self.generation = 0  # of the file this was loaded from or last saved to
        self._index = _build(int(dim), factory, metric)
        _apply_search_params(self._index, search_params, factory)

    @classmethod
    def from_settings(cls, settings: IndexSettings, *, dim: int, embedder: str) -> FaissIndex:
        return cls(
            dim,
            factory=settings.factory,
            search_params=settings.search_params,
            metric=settings.metric,
            embedder=embedder,
        )

    # -- properties ------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def exact(self) -> bool:
        """True when stored vectors come back unchanged (no compression)."""
        return _stores_exact_vectors(self._index)

    def __repr__(self) -> str:
        return (
            f"FaissIndex(dim={self.dim}, factory={self.factory!r}, metric={self.metric!r}, "
            f"embedder={self.embedder!r}, ntotal={self.ntotal}, generation={self.generation})"
        )

    # -- checks ----------------------------------------------------------------------------

    def _vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{what} must be (n, {self.dim}) float32, got shape {x.shape}")
        return x

    # -- VectorIndex -----------------------------------------------------------------------

    def train(self, vectors: np.ndarray) -> None:
        """Train the coarse quantizer / codebooks (IVF, PQ, SQ); no-op when already trained."""
        if self.is_trained:
            return
        x = self._vectors(vectors, "training vectors")
        try:
            self._index.train(x)
        except RuntimeError as err:
            raise ReidTraceError(
                f"FAISS cannot train index.factory={self.factory!r} on {len(x)} vectors: "
                f"{_faiss_reason(err)}",
                hint="IVF<n> needs at least n training vectors (ideally 40n) and PQ 256; "
                'use fewer lists, or "IDMap2,Flat" until the gallery grows',
            ) from err

    def add(self, ids: np.ndarray, vectors: np.ndarray, *, check_ids: bool = True) -> None:
        """Add ``vectors`` under ``ids``. An untrained index refuses (train it first).

        ``check_ids`` refuses ids already present (FAISS would silently keep both vectors);
        rebuilds that add unique primary keys into an empty index skip the O(n) check.
        """
        x = self._vectors(vectors, "vectors")
        keys = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(keys) != len(x):
            raise ValueError(f"{len(keys)} ids for {len(x)} vectors")
        if not self.is_trained:
            raise ReidTraceError(
                f"the vector index (factory {self.factory!r}) is not trained, so it cannot add",
                hint="train(vectors) first; rebuild_index/sync_index train it on the stored "
                "sightings",
            )
        if len(keys) == 0:
            return
        if check_ids:
            if len(np.unique(keys)) != len(keys):
                raise ValueError("duplicate ids in one add()")
            present = keys[np.isin(keys, self.ids())]
            if len(present):
                raise ValueError(f"ids already in the index: {present[:10].tolist()}")
        self._index.add_with_ids(x, keys)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` (n, k); ids are -1 where fewer than k vectors exist."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = self._vectors(queries, "queries")
        scores, ids = self._index.search(q, int(k))
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    # -- ids and vectors -------------------------------------------------------------------

    def remove_ids(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove these ids (absent ones are ignored); returns how many were removed."""
        keys = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(keys) == 0:
            return 0
        try:
            return int(self._index.remove_ids(keys))
        except RuntimeError as err:
            raise ReidTraceError(
                f"index.factory={self.factory!r} cannot remove vectors: {_faiss_reason(err)}",
                hint="rebuild it (sync_index does so automatically), or use a Flat or IVF "
                "factory when galleries change often",
            ) from err

    def ids(self) -> np.ndarray:
        """Every id in the index, sorted int64."""
        idx = self._index
        if isinstance(idx, faiss.IndexIDMap):
            return np.sort(faiss.vector_to_array(idx.id_map).astype(np.int64))
        ivf = faiss.extract_index_ivf(idx)
        invlists = ivf.invlists
        parts = []
        for lst in range(ivf.nlist):
            n = invlists.list_size(lst)
            if n:
                ptr = invlists.get_ids(lst)
                parts.append(faiss.rev_swig_ptr(ptr, n).astype(np.int64))
                invlists.release_ids(lst, ptr)
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (n, dim); approximate for compressed indexes."""
        keys = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.zeros((len(keys), self.dim), np.float32)
        for row, key in enumerate(keys.tolist()):
            try:
                out[row] = self._index.reconstruct(key)
            except RuntimeError as err:
                raise KeyError(f"id {key} is not in the index") from err
        return out

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | Path) -> IndexManifest:
        """Write the index and its manifest atomically; the generation goes up by one.

        The old pair stays intact until the new files are complete on disk; a failure leaves
        no temporary files behind.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ReidTraceError(
                f"cannot create the folder for the vector index {path}: {err}",
                hint="point index_path (REIDTRACE_INDEX_PATH) at a writable place",
            ) from err
        with contextlib.suppress(ReidTraceError):
            self.generation = max(self.generation, read_manifest(path).generation)
        generation = self.generation + 1
        tmp_index = tmp_manifest = None
        try:
            tmp_index = _temp_beside(path, ".tmp")
            _write_index_file(self._index, tmp_index)
            _fsync_file(tmp_index)
            size, sha = _digest(tmp_index)
            manifest = IndexManifest(
                factory=self.factory,
                search_params=self.search_params,
                metric=self.metric,  # type: ignore[arg-type]
                dim=self.dim,
                embedder=self.embedder,
                count=self.ntotal,
                generation=generation,
                created=utcnow(),
                size=size,
                sha256=sha,
                faiss_version=faiss.__version__,
            )
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
        self.generation = generation
        return manifest

    @classmethod
    def load(
        cls,
        path: str | Path,
        expect: IndexExpectation | None = None,
        *,
        search_params: str | None = None,
        check_hash: bool = True,
    ) -> FaissIndex:
        """Read the index at ``path``; refuse it when it does not match its manifest or
        ``expect``. ``search_params`` overrides the manifest's (they are query-time knobs)."""
        path = Path(path)
        if not path.exists():
            raise ReidTraceError(
                f"no vector index at {path}",
                hint="ingest a video, or run a sync to build it from the database",
                status=404,
            )
        for _attempt in range(3):  # a writer may replace the pair between our two reads
            manifest = read_manifest(path)
            size, sha = _digest(path) if check_hash else (path.stat().st_size, manifest.sha256)
            if (size, sha) == (manifest.size, manifest.sha256):
                break
            if read_manifest(path) == manifest:
                raise ReidTraceError(
                    f"the vector index {path} does not match its manifest (size {size} vs "
                    f"{manifest.size}): an interrupted write or an edited file",
                    hint=_rebuild_hint(path),
                )
        else:  # pragma: no cover - three concurrent rewrites in a row
            raise ReidTraceError(f"the vector index {path} kept changing while loading")
        _check_expectation(path, manifest, expect)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise ReidTraceError(
                f"FAISS cannot read {path}: {_faiss_reason(err)}", hint=_rebuild_hint(path)
            ) from err
        if index.d != manifest.dim or index.ntotal != manifest.count:
            raise ReidTraceError(
                f"the vector index {path} holds {index.ntotal} {index.d}-d vectors but its "
                f"manifest says {manifest.count} {manifest.dim}-d",
                hint=_rebuild_hint(path),
            )
        obj = cls.__new__(cls)
        obj.factory = manifest.factory
        obj.metric = manifest.metric
        obj.embedder = manifest.embedder
        obj.search_params = manifest.search_params if search_params is None else search_params
        obj.generation = manifest.generation
        obj._index = index
        _apply_search_params(index, obj.search_params, obj.factory)
        return obj


def _check_expectation(path: Path, got: IndexManifest, expect: IndexExpectation | None) -> None:
    if expect is None:
        return
    wrong = [
        f"{name} {getattr(got, name)!r} (expected {want!r})"
        for name in ("embedder", "dim", "metric", "factory")
        if (want := getattr(expect, name)) is not None and getattr(got, name) != want
    ]
    if wrong:
        raise ReidTraceError(
            f"the vector index {path} does not fit: " + ", ".join(wrong),
            hint=_rebuild_hint(path) + "; or set reid_model / index.* back to what it was "
            "built with",
        )


def create_index(name: str = "faiss", **kwargs: object) -> FaissIndex:
    """The vector index called ``name`` (only ``"faiss"`` today), built from ``kwargs``."""
    known = {"faiss": FaissIndex}
    if name not in known:
        raise ReidTraceError(f"unknown vector index {name!r}", hint=f"one of {sorted(known)}")
    return known[name](**kwargs)  # type: ignore[arg-type]


# --- SQL <-> index -------------------------------------------------------------------------


@contextlib.contextmanager
def _session(db: Engine | Session) -> Iterator[Session]:
    if isinstance(db, Session):
        yield db
        return
    with Session(db, expire_on_commit=False) as session:
        yield session


def _stored_dim(session: Session, embedder: str) -> int | None:
    dims = session.scalars(select(Sighting.dim).where(Sighting.model == embedder).distinct()).all()
    if len(dims) > 1:
        raise ReidTraceError(
            f"the store holds sightings of {sorted(dims)} dimensions for embedder {embedder!r}",
            hint="delete the sightings of the old model, or give models distinct names",
        )
    return int(dims[0]) if dims else None


def _generation_floor(session: Session, path: Path) -> int:
    """The highest generation known anywhere, so a new write never reuses a number."""
    state = repo.get_index_state(session=session)
    floor = state.generation if state is not None else 0
    with contextlib.suppress(ReidTraceError):
        floor = max(floor, read_manifest(path).generation)
    return floor


def _record(session: Session, path: Path, index: FaissIndex) -> None:
    repo.set_index_state(
        session=session,
        generation=index.generation,
        count=index.ntotal,
        embedder=index.embedder,
        path=str(path.resolve()),
    )


def _rebuild(
    session: Session,
    path: Path,
    settings: IndexSettings,
    embedder: str,
    *,
    dim: int | None,
    batch: int,
    max_train: int,
    seed: int,
) -> FaissIndex:
    stored = _stored_dim(session, embedder)
    if stored is not None and dim is not None and stored != dim:
        raise ReidTraceError(
            f"embedder {embedder!r} has {stored}-d sightings in the store, not {dim}-d",
            hint="pass the embedder's real dimension, or none to take it from the store",
        )
    dim = stored if stored is not None else dim
    if dim is None:
        raise ReidTraceError(
            f"no sightings of embedder {embedder!r} in the store, so the index dimension is "
            "unknown",
            hint="ingest a video first (or pass dim=...)",
        )
    index = FaissIndex.from_settings(settings, dim=dim, embedder=embedder)
    if not index.is_trained:
        ids = repo.sighting_ids(session=session, model=embedder)
        if len(ids) == 0:
            raise ReidTraceError(
                f"index.factory={settings.factory!r} needs training vectors and the store has "
                f"no sightings of {embedder!r}",
                hint='ingest first, or use "IDMap2,Flat" (no training) for small galleries',
            )
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(ids, size=min(len(ids), max_train), replace=False))
        _, vectors = repo.sighting_vectors(session=session, ids=pick.tolist())
        index.train(vectors)
    for ids, vectors in repo.all_sighting_vectors(session=session, model=embedder, batch=batch):
        index.add(ids, vectors, check_ids=False)  # primary keys, into an empty index
    index.generation = _generation_floor(session, path)
    index.save(path)
    _record(session, path, index)
    return index


def rebuild_index(
    db: Engine | Session,
    path: str | Path,
    settings: IndexSettings,
    embedder_name: str,
    *,
    dim: int | None = None,
    batch: int = 10_000,
    max_train: int = 100_000,
    seed: int = 0,
) -> IndexManifest:
    """Build the index afresh from every sighting of ``embedder_name`` and save it at ``path``.

    Trains (IVF/PQ) on up to ``max_train`` stored vectors drawn at random, then streams the
    vectors in id order, ``batch`` rows at a time. ``dim`` is needed only for an empty store.
    """
    path = Path(path)
    with _locked(path), _session(db) as session:
        _rebuild(
            session,
            path,
            settings,
            embedder_name,
            dim=dim,
            batch=batch,
            max_train=max_train,
            seed=seed,
        )
    return read_manifest(path)


class VerifyReport(BaseModel):
    """How the index at ``path`` differs from SQL (``ok`` when it does not)."""

    path: str
    embedder: str | None = None
    sql_count: int = 0
    index_count: int = 0
    missing_ids: list[int] = []  # in SQL, not in the index
    stray_ids: list[int] = []  # in the index, not in SQL
    mismatched_ids: list[int] = []  # sampled ids whose vectors differ
    vectors_checked: int = 0
    exact: bool | None = None  # vectors compared exactly (Flat) or loosely (compressed codes)
    index_generation: int | None = None
    sql_generation: int | None = None  # index_state: the generation last written
    error: str | None = None  # the index could not be loaded at all

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per problem found, for people."""
        out = []
        if self.error:
            out.append(self.error)
        if self.missing_ids:
            out.append(f"{len(self.missing_ids)} sightings are missing from the index")
        if self.stray_ids:
            out.append(f"{len(self.stray_ids)} index entries have no sighting in SQL")
        if self.mismatched_ids:
            out.append(
                f"{len(self.mismatched_ids)} of {self.vectors_checked} sampled vectors differ "
                "from SQL"
            )
        if self.error is None and self.index_generation != self.sql_generation:
            out.append(
                f"index file generation {self.index_generation} != generation "
                f"{self.sql_generation} recorded in SQL"
            )
        return out


def _mismatched(session: Session, index: FaissIndex, ids: np.ndarray) -> list[int]:
    if len(ids) == 0:
        return []
    got_ids, sql = repo.sighting_vectors(session=session, ids=ids.tolist())
    if len(got_ids) == 0:
        return []
    if sql.shape[1] != index.dim:
        return got_ids.tolist()
    stored = index.reconstruct(got_ids)
    if index.exact:
        bad = np.abs(stored - sql).max(axis=1) > EXACT_ATOL
    else:
        norms = np.linalg.norm(stored, axis=1) * np.linalg.norm(sql, axis=1)
        cos = (stored * sql).sum(axis=1) / np.maximum(norms, 1e-12)
        bad = cos < LOSSY_MIN_COSINE
    return got_ids[bad].tolist()


def _sample(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(ids) <= n:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))


def verify_index(
    db: Engine | Session, path: str | Path, *, sample: int = 256, seed: int = 0
) -> VerifyReport:
    """Compare the index at ``path`` with SQL: missing and stray ids (all of them), vectors (a
    random ``sample`` of the shared ids) and the generation against ``index_state``."""
    path = Path(path)
    with _session(db) as session:
        state = repo.get_index_state(session=session)
        report = VerifyReport(
            path=str(path), sql_generation=state.generation if state is not None else None
        )
        try:
            index = FaissIndex.load(path)
        except ReidTraceError as err:
            report.error = err.message
            return report
        sql = repo.sighting_ids(session=session, model=index.embedder)
        have = index.ids()
        common = np.intersect1d(sql, have, assume_unique=True)
        checked = _sample(common, sample, seed)
        report.embedder = index.embedder
        report.sql_count = len(sql)
        report.index_count = len(have)
        report.missing_ids = np.setdiff1d(sql, have, assume_unique=True).tolist()
        report.stray_ids = np.setdiff1d(have, sql, assume_unique=True).tolist()
        report.mismatched_ids = _mismatched(session, index, checked)
        report.vectors_checked = len(checked)
        report.exact = index.exact
        report.index_generation = index.generation
        return report


class SyncReport(BaseModel):
    """What :func:`sync_index` changed."""

    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    reason: str | None = None  # why it rebuilt
    count: int = 0
    generation: int = 0
    saved: bool = False  # a new generation was written


def sync_index(
    db: Engine | Session,
    path: str | Path,
    settings: IndexSettings | None = None,
    embedder_name: str | None = None,
    *,
    sample: int = 256,
    batch: int = 10_000,
    seed: int = 0,
) -> SyncReport:
    """Make the index at ``path`` hold exactly the sightings SQL has; cheap when it does.

    Adds missing ids, removes stray ones, replaces sampled vectors that differ, and records the
    generation in ``index_state``. With ``settings`` and ``embedder_name`` it also rebuilds
    from SQL when the file is missing or unreadable, was built with another embedder, metric or
    factory, cannot remove, or is untrained; without them such an index is an error.
    """
    path = Path(path)
    with _locked(path), _session(db) as session:
        expect = None
        if settings is not None or embedder_name is not None:
            expect = IndexExpectation(
                embedder=embedder_name,
                metric=settings.metric if settings is not None else None,
                factory=settings.factory if settings is not None else None,
            )
        try:
            index: FaissIndex | None = FaissIndex.load(
                path,
                expect,
                search_params=settings.search_params if settings is not None else None,
            )
            reason = None
        except ReidTraceError as err:
            index, reason = None, err.message

        def rebuild(why: str) -> SyncReport:
            if settings is None or embedder_name is None:
                raise ReidTraceError(
                    f"cannot sync the vector index {path}: {why}",
                    hint="pass the index settings and the embedder name so it can be rebuilt "
                    "from the database, or " + _rebuild_hint(path),
                )
            new = _rebuild(
                session,
                path,
                settings,
                embedder_name,
                dim=None,
                batch=batch,
                max_train=100_000,
                seed=seed,
            )
            return SyncReport(
                added=new.ntotal,
                rebuilt=True,
                reason=why,
                count=new.ntotal,
                generation=new.generation,
                saved=True,
            )

        if index is None:
            return rebuild(reason or "no index")
        stored_dim = _stored_dim(session, index.embedder)
        if stored_dim is not None and stored_dim != index.dim:
            return rebuild(f"the index is {index.dim}-d, the sightings {stored_dim}-d")

        sql = repo.sighting_ids(session=session, model=index.embedder)
        have = index.ids()
        missing = np.setdiff1d(sql, have, assume_unique=True)
        stray = np.setdiff1d(have, sql, assume_unique=True)
        common = np.intersect1d(sql, have, assume_unique=True)
        bad = np.asarray(_mismatched(session, index, _sample(common, sample, seed)), np.int64)
        drop = np.union1d(stray, bad)
        add = np.union1d(missing, bad)
        removed = 0
        if len(drop):
            try:
                removed = index.remove_ids(drop)
            except ReidTraceError as err:
                return rebuild(err.message)
        if len(add) and not index.is_trained:
            return rebuild("the index is not trained")
        for start in range(0, len(add), batch):
            ids, vectors = repo.sighting_vectors(session=session, ids=add[start : start + batch])
            index.add(ids, vectors, check_ids=False)  # missing or just removed: not present
        state = repo.get_index_state(session=session)
        # A file older than the generation SQL recorded (a restored backup) is rewritten under
        # a new number: readers that poll the manifest must never see a number twice.
        behind = state is not None and state.generation > index.generation
        saved = bool(len(drop) or len(add) or behind)
        if saved:
            index.generation = _generation_floor(session, path)
            index.save(path)
        if saved or state is None or state.generation != index.generation:
            _record(session, path, index)  # also when the file is ahead (crash before this)
        return SyncReport(
            added=len(add),
            removed=removed,
            count=index.ntotal,
            generation=index.generation,
            saved=saved,
        )
