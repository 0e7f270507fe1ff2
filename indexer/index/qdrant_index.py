"""A ``VectorIndex`` on Qdrant: for galleries that outgrow one machine's FAISS file.

Chosen by URL (``Settings.index_url``), with the same contract as :class:`FaissIndex`: one
vector per sighting under the sighting's id, inner product (``ip``, Qdrant's ``Dot``) or squared
L2 (``l2``: Qdrant returns the Euclidean distance, squared here so scores mean what FAISS's do),
and the model identity checked before use. What the FAISS manifest file records lives in the
collection's own metadata (``reidtrace_format``, ``embedder``, ``metric``, ``generation``,
``count``, ``created``), so a server-side collection carries it wherever it is served from.

URLs:

* ``qdrant:///abs/folder`` or ``qdrant://./relative/folder``: Qdrant's local mode (embedded,
  numpy brute force: exact, fine up to ~100k vectors; one process at a time holds the folder);
* ``qdrant+http://host:6333/collection`` / ``qdrant+https://...``: a Qdrant server (HNSW;
  ``search_params`` ``"hnsw_ef=128"`` or ``"exact=true"``); the API key, when the server needs
  one, comes from the ``QDRANT_API_KEY`` environment variable, never the URL;
* ``qdrant://:memory:``: in memory, for tests (lives as long as the process).

The collection is ``?collection=NAME`` in local mode (default ``reidtrace``), the URL path for a
server. Clients are kept per URL for the life of the process: Qdrant's local mode locks its
folder, so a second client in the same process would be refused.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from indexer.index.manifest import IndexExpectation, IndexManifest, check_expectation
from indexer.store.models import utcnow
from reid.errors import ReidTraceError
from reid.vectors import as_rows

try:  # optional: pip install 'reidtrace[vectordb]'
    import qdrant_client
    from qdrant_client import QdrantClient
    from qdrant_client import models as qm
except ImportError:  # pragma: no cover - depends on the environment
    qdrant_client = None  # type: ignore[assignment]

__all__ = ["SCHEMES", "QdrantIndex", "QdrantLocation", "is_index_url", "parse_index_url"]

SCHEMES = ("qdrant", "qdrant+http", "qdrant+https")  # also indexer.settings.INDEX_SCHEMES
FACTORY = "qdrant"  # what the manifest's ``factory`` says for this backend
FORMAT = 1
DEFAULT_COLLECTION = "reidtrace"
URL_HINT = (
    'e.g. "qdrant:///var/lib/reidtrace/qdrant" (local folder) or '
    '"qdrant+http://localhost:6333/reidtrace" (server)'
)
DISTANCES = {"ip": "Dot", "l2": "Euclid"}
_BATCH = 1024
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def is_index_url(location: object) -> bool:
    """Whether ``location`` names a vector database (a ``qdrant...://`` URL), not a FAISS file."""
    return isinstance(location, str) and location.split("://", 1)[0].lower() in SCHEMES


@dataclass(frozen=True)
class QdrantLocation:
    """A parsed index URL: how to reach Qdrant (``client_kwargs``) and which collection."""

    url: str
    client_kwargs: tuple[tuple[str, str], ...]
    collection: str

    def __str__(self) -> str:
        return self.url


def parse_index_url(url: str) -> QdrantLocation:
    """Check and split an index URL (see the module doc); a bad one is a ``ReidTraceError``."""
    if not is_index_url(url):
        raise ReidTraceError(f"index_url {url!r} is not a Qdrant URL", hint=URL_HINT)
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    query = parse_qs(parsed.query)
    if scheme == "qdrant":
        name = (query.get("collection") or [DEFAULT_COLLECTION])[0]
        if parsed.netloc == ":memory:":
            kwargs: tuple[tuple[str, str], ...] = (("location", ":memory:"),)
        else:
            folder = parsed.netloc + parsed.path  # qdrant://./rel -> "./rel"; qdrant:///abs
            if not folder:
                raise ReidTraceError(f"index_url {url!r} names no folder", hint=URL_HINT)
            kwargs = (("path", str(Path(folder).expanduser())),)
    else:
        if not parsed.hostname:
            raise ReidTraceError(f"index_url {url!r} names no server", hint=URL_HINT)
        if parsed.password or parsed.username:
            raise ReidTraceError(
                f"index_url {url!r} carries credentials",
                hint="put the API key in the QDRANT_API_KEY environment variable instead",
            )
        http = scheme.removeprefix("qdrant+")
        port = parsed.port or 6333
        kwargs = (("url", f"{http}://{parsed.hostname}:{port}"),)
        name = parsed.path.strip("/") or DEFAULT_COLLECTION
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ReidTraceError(
            f"index_url {url!r}: collection name {name!r} must be letters, digits, '-' or '_'",
            hint=URL_HINT,
        )
    return QdrantLocation(url=url, client_kwargs=kwargs, collection=name)


def _require() -> None:
    if qdrant_client is None:
        raise ReidTraceError(
            "index_url names a Qdrant index, but the qdrant-client package is not installed",
            hint="pip install 'reidtrace[vectordb]', or unset REIDTRACE_INDEX_URL to use the "
            "FAISS file",
        )


def _client(loc: QdrantLocation) -> Any:
    """One client per URL for the whole process (see the module doc)."""
    _require()
    key = repr(loc.client_kwargs)
    with _clients_lock:
        if key not in _clients:
            kwargs: dict[str, Any] = dict(loc.client_kwargs)
            if "url" in kwargs and os.environ.get("QDRANT_API_KEY"):
                kwargs["api_key"] = os.environ["QDRANT_API_KEY"]
            if "path" in kwargs:
                Path(kwargs["path"]).mkdir(parents=True, exist_ok=True)
            try:
                _clients[key] = QdrantClient(**kwargs)
            except Exception as err:  # qdrant raises RuntimeError / IO errors of its own
                raise ReidTraceError(
                    f"cannot open the Qdrant index {loc.url}: {err}".splitlines()[0],
                    hint="local mode allows one process per folder; several processes need a "
                    "Qdrant server (qdrant+http://...)",
                ) from err
        return _clients[key]


def close_clients() -> None:
    """Close every cached client (tests; a long-running process never needs to)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def _parse_search_params(params: str) -> dict[str, Any]:
    """``"hnsw_ef=128"`` / ``"exact=true"`` (comma-separated) into Qdrant's SearchParams."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in params.split(","))):
        key, _, value = part.partition("=")
        key = key.strip()
        try:
            if key == "hnsw_ef":
                out[key] = int(value)
                if out[key] < 1:
                    raise ValueError
            elif key == "exact":
                if value.strip().lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = value.strip().lower() in ("true", "1")
            else:
                raise KeyError(key)
        except (ValueError, KeyError) as err:
            raise ReidTraceError(
                f"index.search_params={params!r} does not fit a Qdrant index ({part!r})",
                hint='Qdrant takes "hnsw_ef=128" and/or "exact=true"; leave it empty for its '
                "defaults",
            ) from err
    return out


class QdrantIndex:
    """``VectorIndex`` over a Qdrant collection, with the operations ``sync_index`` needs
    (``ids``, ``remove_ids``, ``reconstruct``, ``save``) and the model identity check."""

    factory = FACTORY

    def __init__(
        self,
        location: QdrantLocation,
        *,
        dim: int,
        metric: str,
        embedder: str,
        search_params: str = "",
        generation: int = 0,
    ) -> None:
        self.location = location
        self._client = _client(location)
        self._dim = int(dim)
        self.metric = metric
        self.embedder = embedder
        self.search_params = search_params
        self._params = _parse_search_params(search_params)
        self.generation = generation

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        url: str,
        *,
        dim: int,
        metric: str = "ip",
        embedder: str = "",
        search_params: str = "",
    ) -> QdrantIndex:
        """An empty collection (an existing one is dropped: this is a rebuild), whose
        generation continues the old one's so readers never see a number twice."""
        loc = parse_index_url(url)
        _parse_search_params(search_params)  # refuse bad knobs before dropping anything
        if not isinstance(dim, int | np.integer) or dim < 1:
            raise ReidTraceError(f"vector dimension must be a positive integer, got {dim!r}")
        if metric not in DISTANCES:
            raise ReidTraceError(
                f"index.metric={metric!r} is not one of {sorted(DISTANCES)}",
                hint='"ip" (cosine on unit-length embeddings) or "l2"',
            )
        client = _client(loc)
        generation = stored_generation(url)
        if client.collection_exists(loc.collection):
            client.delete_collection(loc.collection)
        client.create_collection(
            loc.collection,
            vectors_config=qm.VectorParams(size=int(dim), distance=DISTANCES[metric]),
            metadata=_metadata(embedder, metric, generation, 0),
        )
        return cls(
            loc,
            dim=int(dim),
            metric=metric,
            embedder=embedder,
            search_params=search_params,
            generation=generation,
        )

    @classmethod
    def load(
        cls,
        url: str,
        expect: IndexExpectation | None = None,
        *,
        search_params: str | None = None,
        check_hash: bool = True,  # FaissIndex.load's signature; nothing to hash here
    ) -> QdrantIndex:
        """Open the collection at ``url``; refuse it when ``expect`` does not match (model,
        dim, metric), exactly as a FAISS index file is refused."""
        manifest = read_qdrant_manifest(url)
        check_expectation(Path(url), manifest, expect)
        return cls(
            parse_index_url(url),
            dim=manifest.dim,
            metric=manifest.metric,
            embedder=manifest.embedder,
            search_params=manifest.search_params if search_params is None else search_params,
            generation=manifest.generation,
        )

    # -- properties ------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def ntotal(self) -> int:
        return int(self._client.count(self.location.collection, exact=True).count)

    def __len__(self) -> int:
        return self.ntotal

    is_trained = True  # nothing to train
    exact = True  # float32 vectors are stored as given (no quantization is configured)

    def __repr__(self) -> str:
        return (
            f"QdrantIndex({self.location.url!r}, dim={self.dim}, metric={self.metric!r}, "
            f"embedder={self.embedder!r}, generation={self.generation})"
        )

    # -- VectorIndex -----------------------------------------------------------------------

    def _vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        return as_rows(vectors, self.dim, what)

    def train(self, vectors: np.ndarray) -> None:
        """Nothing to train (the protocol of ``FaissIndex``)."""

    def add(self, ids: np.ndarray, vectors: np.ndarray, *, check_ids: bool = True) -> None:
        """Add ``vectors`` under ``ids`` (non-negative: Qdrant ids are unsigned)."""
        x = self._vectors(vectors, "vectors")
        keys = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(keys) != len(x):
            raise ValueError(f"{len(keys)} ids for {len(x)} vectors")
        if len(keys) == 0:
            return
        if (keys < 0).any():
            raise ValueError("Qdrant ids must be >= 0")
        if check_ids:
            if len(np.unique(keys)) != len(keys):
                raise ValueError("duplicate ids in one add()")
            present = self._present(keys)
            if len(present):
                raise ValueError(f"ids already in the index: {present[:10].tolist()}")
        for lo in range(0, len(keys), _BATCH):
            self._client.upsert(
                self.location.collection,
                points=qm.Batch(
                    ids=keys[lo : lo + _BATCH].tolist(), vectors=x[lo : lo + _BATCH].tolist()
                ),
                wait=True,
            )

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)`` (n, k), best first; ids -1 (and FAISS's filler score) past the
        last hit."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = self._vectors(queries, "queries")
        params = qm.SearchParams(**self._params) if self._params else None
        fill = np.float32(-3.4028235e38 if self.metric == "ip" else 3.4028235e38)
        scores = np.full((len(q), k), fill, np.float32)
        ids = np.full((len(q), k), -1, np.int64)
        for lo in range(0, len(q), _BATCH):
            requests = [
                qm.QueryRequest(query=row.tolist(), limit=int(k), params=params)
                for row in q[lo : lo + _BATCH]
            ]
            answers = self._client.query_batch_points(self.location.collection, requests)
            for i, answer in enumerate(answers, start=lo):
                for j, point in enumerate(answer.points):
                    ids[i, j] = int(point.id)
                    scores[i, j] = point.score if self.metric == "ip" else point.score**2
        return scores, ids

    # -- ids and vectors -------------------------------------------------------------------

    def _present(self, keys: np.ndarray) -> np.ndarray:
        found = []
        for lo in range(0, len(keys), _BATCH):
            points = self._client.retrieve(
                self.location.collection,
                keys[lo : lo + _BATCH].tolist(),
                with_payload=False,
                with_vectors=False,
            )
            found += [int(p.id) for p in points]
        return np.sort(np.asarray(found, np.int64))

    def remove_ids(self, ids: Any) -> int:
        """Remove these ids (absent ones are ignored); returns how many were removed."""
        keys = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        keys = keys[keys >= 0]
        present = self._present(keys) if len(keys) else keys
        for lo in range(0, len(present), _BATCH):
            self._client.delete(
                self.location.collection,
                points_selector=qm.PointIdsList(points=present[lo : lo + _BATCH].tolist()),
                wait=True,
            )
        return len(present)

    def ids(self) -> np.ndarray:
        """Every id in the collection, sorted int64."""
        out: list[int] = []
        offset = None
        while True:
            points, offset = self._client.scroll(
                self.location.collection,
                limit=10_000,
                offset=offset,
                with_payload=False,
                with_vectors=False,
            )
            out += [int(p.id) for p in points]
            if offset is None:
                return np.sort(np.asarray(out, np.int64))

    def reconstruct(self, ids: Any) -> np.ndarray:
        """The stored vectors of ``ids`` (n, dim); ``KeyError`` for an id not present."""
        keys = np.asarray(ids, dtype=np.int64).reshape(-1)
        points = self._client.retrieve(
            self.location.collection, keys.tolist(), with_payload=False, with_vectors=True
        )
        got = {int(p.id): p.vector for p in points}
        out = np.zeros((len(keys), self.dim), np.float32)
        for row, key in enumerate(keys.tolist()):
            if key not in got:
                raise KeyError(f"id {key} is not in the index")
            out[row] = got[key]
        return out

    # -- persistence -----------------------------------------------------------------------

    def manifest(self) -> IndexManifest:
        """What the collection's metadata records (the FAISS manifest's fields)."""
        return read_qdrant_manifest(self.location.url)

    def save(self, location: object = None) -> IndexManifest:
        """Record a new generation and the count in the collection's metadata (the points
        are already stored: Qdrant writes them as they are added)."""
        self.generation = max(self.generation, stored_generation(self.location.url)) + 1
        count = self.ntotal
        self._client.update_collection(
            self.location.collection,
            metadata=_metadata(self.embedder, self.metric, self.generation, count)
            | {"search_params": self.search_params},
        )
        return read_qdrant_manifest(self.location.url)


def _metadata(embedder: str, metric: str, generation: int, count: int) -> dict[str, Any]:
    return {
        "reidtrace_format": FORMAT,
        "embedder": embedder,
        "metric": metric,
        "generation": generation,
        "count": count,
        "created": utcnow().isoformat(),
    }


def read_qdrant_manifest(url: str) -> IndexManifest:
    """The collection's metadata as an :class:`IndexManifest` (404 when it does not exist)."""
    loc = parse_index_url(url)
    client = _client(loc)
    if not client.collection_exists(loc.collection):
        raise ReidTraceError(
            f"the Qdrant index {url} has no collection {loc.collection!r}",
            hint="the next sync (reidtrace ingest, reidtrace index rebuild) creates it from "
            "the database",
            status=404,
        )
    info = client.get_collection(loc.collection)
    meta = info.config.metadata or {}
    vectors = info.config.params.vectors
    if meta.get("reidtrace_format") != FORMAT or not isinstance(vectors, qm.VectorParams):
        raise ReidTraceError(
            f"the Qdrant collection {loc.collection!r} at {url} was not written by reidtrace",
            hint="name another collection in index_url, or drop this one",
        )
    return IndexManifest(
        factory=FACTORY,
        search_params=str(meta.get("search_params", "")),
        metric=meta["metric"],
        dim=int(vectors.size),
        embedder=str(meta["embedder"]),
        count=int(meta["count"]),
        generation=int(meta["generation"]),
        created=datetime.fromisoformat(meta["created"]),
        size=0,
        sha256="",
        faiss_version=f"qdrant-client {qdrant_client.__version__}"
        if hasattr(qdrant_client, "__version__")
        else "qdrant-client",
    )


def stored_generation(url: str) -> int:
    """The generation the collection at ``url`` last recorded (0 when there is none)."""
    try:
        return read_qdrant_manifest(url).generation
    except ReidTraceError:
        return 0
