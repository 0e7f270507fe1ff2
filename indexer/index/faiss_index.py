"""The FAISS vector index: ids, training, removal and safe persistence, over a factory string.

The index holds one vector per sighting of one model, under the sighting's id, so a hit joins
straight to its row. Structure comes from a FAISS factory string (``IndexSettings.factory``)
and search knobs from a second string (``search_params``, e.g. ``"nprobe=16"``). Two
adjustments keep ids right:

* IVF indexes take ids natively, so a leading ``IDMap,``/``IDMap2,`` before an IVF is dropped:
  FAISS's ``IndexIDMap`` over an IVF returns wrong ids after ``remove_ids`` (the IVF keeps the
  old positions while the id map is compacted). The IVF gets a hash-table direct map, so ids can
  be removed and vectors reconstructed.
* Everything else is wrapped in ``IDMap2`` (added when the string lacks it), which supports
  removal where the inner index does (``Flat``; not ``HNSW``, which ``sync_index`` rebuilds).

Files are written and read with the protocol of ``indexer.index.manifest``. A ``FaissIndex``
object may serve concurrent searches but must not be searched while it is being modified.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from indexer.index.manifest import (
    IndexExpectation,
    IndexManifest,
    check_expectation,
    read_checked_manifest,
    read_manifest,
    rebuild_hint,
    write_atomically,
)
from indexer.settings import IndexSettings
from indexer.store.models import utcnow
from reid.errors import ReidTraceError
from reid.vectors import as_rows

__all__ = ["FaissIndex", "create_index"]

METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
FACTORY_HINT = 'try "IDMap2,Flat" (exact), or "IVF4096,PQ32" for large galleries'


def _faiss_reason(err: Exception) -> str:
    """FAISS's own words without the C++ location ("Error in ... at file.cpp:123: ...")."""
    text = str(err).strip()
    match = re.search(r"\.(?:cpp|h):\d+: (.*)", text, flags=re.S)
    return (match.group(1) if match else text).strip().splitlines()[0]


def _write_index_file(index: faiss.Index, dest: Path) -> None:
    """Serialise ``index`` into ``dest`` (a separate function so tests can make it fail)."""
    faiss.write_index(index, str(dest))


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


SEARCH_PARAMS_HINT = (
    'IVF indexes take "nprobe=16", HNSW "efSearch=64", a re-ranked index (",RFlat") also '
    '"k_factor=4"; separate several with commas, e.g. "efSearch=64,k_factor=4"; leave it '
    "empty for Flat"
)
KNOB_ALIASES = {"k_factor": "k_factor_rf"}
"""Our names for FAISS knobs whose ``ParameterSpace`` name is obscure: ``k_factor`` is how many
times ``k`` candidates a re-ranked (``IndexRefine``) index fetches before re-ranking them on the
full vectors; FAISS calls it ``k_factor_rf`` to tell it from IVFPQR's own ``k_factor``."""


def _parse_search_params(params: str, factory: str) -> str:
    """``params`` as FAISS's ``ParameterSpace`` takes it, refused unless every part is
    ``name=number`` (FAISS would read ``efSearch=lots`` as 0 and search with it)."""
    parts = []
    for part in params.split(","):
        name, eq, value = (t.strip() for t in part.partition("="))
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not name or not eq or not math.isfinite(number) or number < 0:
            raise ReidTraceError(
                f"index.search_params={params!r} for index.factory={factory!r}: {part.strip()!r} "
                "is not name=number (a number >= 0)",
                hint=SEARCH_PARAMS_HINT,
            )
        parts.append(f"{KNOB_ALIASES.get(name, name)}={value}")
    return ",".join(parts)


def _apply_search_params(index: faiss.Index, params: str, factory: str) -> None:
    if not params.strip():
        return
    native = _parse_search_params(params, factory)
    try:
        faiss.ParameterSpace().set_index_parameters(index, native)
    except RuntimeError as err:
        raise ReidTraceError(
            f"FAISS cannot apply index.search_params={params!r} to index.factory={factory!r}: "
            f"{_faiss_reason(err)}",
            hint=SEARCH_PARAMS_HINT,
        ) from err


def _pretransforms(index: faiss.Index) -> list[faiss.IndexPreTransform]:
    """The ``IndexPreTransform`` layers of ``index`` (under ``IDMap2`` and ``IndexRefine``)."""
    out = []
    todo = [index]
    while todo:
        idx = faiss.downcast_index(todo.pop())
        if isinstance(idx, faiss.IndexIDMap):
            todo.append(idx.index)
        elif isinstance(idx, faiss.IndexRefine):
            todo.append(idx.base_index)
        elif isinstance(idx, faiss.IndexPreTransform):
            out.append(idx)
            todo.append(idx.index)
    return out


def _train_uncentred_pca(index: faiss.Index, x: np.ndarray) -> None:
    """Train each PCA of ``index`` and drop its centring, before the rest is trained.

    FAISS's ``PCAMatrix`` maps ``x`` to ``A (x - mean)``. Distances do not care, but inner
    products do: ``<A(x - m), A(q - m)>`` ranks by ``<Ax, Aq> - <Ax, Am>``, which favours vectors
    pointing away from the mean. ReID embeddings share a strong mean direction (norm ~0.64),
    and with it a ``PCA256,HNSW32,RFlat`` index found a third of the exact top-10 at 100k. The
    same axes without the shift (``Ax``) keep inner products up to the small share of each
    vector outside the kept axes, and change no L2 distance; the layers after the PCA are then
    trained on ``Ax`` by FAISS as usual (it skips trained transforms).
    """
    for pre in _pretransforms(index):
        xt = x
        for i in range(pre.chain.size()):
            vt = pre.chain.at(i)
            if not vt.is_trained:
                vt.train(xt)
                pca = faiss.downcast_VectorTransform(vt)
                if isinstance(pca, faiss.PCAMatrix):
                    pca.have_bias = False
            xt = vt.apply(xt)


def _stores_exact_vectors(index: faiss.Index) -> bool:
    """Whether ``reconstruct`` returns the added float32 vectors (Flat storage) or codes."""
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexIDMap):
        idx = faiss.downcast_index(idx.index)
    if isinstance(idx, faiss.IndexRefine):  # reconstruct() reads the re-ranking vectors
        idx = faiss.downcast_index(idx.refine_index)
    if isinstance(idx, faiss.IndexIVFFlat):
        return True
    if isinstance(idx, faiss.IndexHNSW):
        idx = faiss.downcast_index(idx.storage)
    return isinstance(idx, faiss.IndexFlat)


class FaissIndex:
    """``VectorIndex`` over FAISS with sighting ids, training, removal and safe persistence.

    ``embedder`` is the id of the model whose vectors it holds (``OnnxEmbedder.model_id``); it
    is recorded in the manifest and checked on load, because vectors of different models are
    not comparable.
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

    def set_search_params(self, params: str) -> None:
        """Apply query-time knobs (``"efSearch=64,k_factor=4"``); they are saved in the
        manifest with the index. A bad string changes nothing and says which knobs fit."""
        _apply_search_params(self._index, params, self.factory)
        self.search_params = params

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
        return as_rows(vectors, self.dim, what)

    # -- VectorIndex -----------------------------------------------------------------------

    def train(self, vectors: np.ndarray) -> None:
        """Train the coarse quantizer / codebooks (IVF, PQ, SQ); no-op when already trained."""
        if self.is_trained:
            return
        x = self._vectors(vectors, "training vectors")
        try:
            _train_uncentred_pca(self._index, x)
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
        no temporary files behind (``manifest.write_atomically``).
        """
        path = Path(path)

        def describe(size: int, sha: str) -> IndexManifest:
            with contextlib.suppress(ReidTraceError):  # never reuse a number on disk
                self.generation = max(self.generation, read_manifest(path).generation)
            return IndexManifest(
                factory=self.factory,
                search_params=self.search_params,
                metric=self.metric,  # type: ignore[arg-type]
                dim=self.dim,
                embedder=self.embedder,
                count=self.ntotal,
                generation=self.generation + 1,
                created=utcnow(),
                size=size,
                sha256=sha,
                faiss_version=faiss.__version__,
            )

        manifest = write_atomically(
            path, lambda dest: _write_index_file(self._index, dest), describe
        )
        self.generation = manifest.generation
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
        manifest = read_checked_manifest(path, check_hash=check_hash)
        check_expectation(path, manifest, expect)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as err:
            raise ReidTraceError(
                f"FAISS cannot read {path}: {_faiss_reason(err)}", hint=rebuild_hint(path)
            ) from err
        if index.d != manifest.dim or index.ntotal != manifest.count:
            raise ReidTraceError(
                f"the vector index {path} holds {index.ntotal} {index.d}-d vectors but its "
                f"manifest says {manifest.count} {manifest.dim}-d",
                hint=rebuild_hint(path),
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


def create_index(name: str = "faiss", **kwargs: object) -> FaissIndex:
    """The vector index called ``name`` (only ``"faiss"`` today), built from ``kwargs``."""
    known = {"faiss": FaissIndex}
    if name not in known:
        raise ReidTraceError(f"unknown vector index {name!r}", hint=f"one of {sorted(known)}")
    return known[name](**kwargs)  # type: ignore[arg-type]
