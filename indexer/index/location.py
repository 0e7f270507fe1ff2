"""Where the vector index lives: a FAISS file (a path) or a vector database (a URL).

``Settings.index_location`` is either; these functions open, create, lock and describe the
index behind it, so ``sync``, ``rebuild`` and ``verify`` (and the query side) work the same on
both. A Qdrant URL needs the optional ``qdrant-client`` package (``reidtrace[vectordb]``); without
it a FAISS path works as before and a Qdrant URL is refused with the install hint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from indexer.index.faiss_index import FaissIndex
from indexer.index.manifest import IndexExpectation, index_lock, read_manifest
from indexer.index.qdrant_index import QdrantIndex, is_index_url, parse_index_url
from indexer.index.qdrant_index import stored_generation as qdrant_generation
from indexer.settings import IndexSettings
from reid.errors import ReidTraceError

__all__ = [
    "AnyIndex",
    "IndexLocation",
    "as_location",
    "describe",
    "is_index_url",
    "location_lock",
    "new_index",
    "open_index",
    "stored_generation",
]

IndexLocation = Union[Path, str]  # noqa: UP007 (a runtime alias)
AnyIndex = Union[FaissIndex, QdrantIndex]  # noqa: UP007


def as_location(location: str | Path) -> IndexLocation:
    """A URL stays a checked string; anything else is a FAISS file path."""
    if is_index_url(location):
        parse_index_url(str(location))  # a bad URL fails here, before any work
        return str(location)
    if isinstance(location, str) and "://" in location:
        raise ReidTraceError(
            f"index location {location!r} is neither a file path nor a Qdrant URL",
            hint='a path, or "qdrant:///folder", "qdrant+http://host:6333/collection"',
        )
    return Path(location)


def open_index(
    location: IndexLocation,
    expect: IndexExpectation | None = None,
    *,
    search_params: str | None = None,
) -> AnyIndex:
    """Load the index at ``location``, refusing one that does not match ``expect``."""
    if is_index_url(location):
        return QdrantIndex.load(str(location), expect, search_params=search_params)
    return FaissIndex.load(Path(location), expect, search_params=search_params)


def new_index(
    location: IndexLocation, settings: IndexSettings, *, dim: int, embedder: str
) -> AnyIndex:
    """An empty index for ``location`` (a Qdrant collection is emptied: this is a rebuild)."""
    if is_index_url(location):
        return QdrantIndex.create(
            str(location),
            dim=dim,
            metric=settings.metric,
            embedder=embedder,
            search_params=settings.search_params,
        )
    return FaissIndex.from_settings(settings, dim=dim, embedder=embedder)


@contextlib.contextmanager
def location_lock(location: IndexLocation) -> Iterator[None]:
    """The writers' lock: a file lock beside a FAISS file; none for Qdrant (local mode locks
    its folder itself, a server serialises writes)."""
    if is_index_url(location):
        yield
        return
    with index_lock(Path(location)):
        yield


def stored_generation(location: IndexLocation) -> int:
    """The generation written at ``location`` (raises ``ReidTraceError`` when there is none
    for a file; 0 for a Qdrant collection that does not exist)."""
    if is_index_url(location):
        return qdrant_generation(str(location))
    return read_manifest(Path(location)).generation


def describe(location: IndexLocation) -> str:
    """How ``index_state`` records the location: the absolute path, or the URL."""
    return str(location) if is_index_url(location) else str(Path(location).resolve())
