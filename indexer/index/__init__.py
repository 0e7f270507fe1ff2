"""The FAISS vector index: a persisted, rebuildable cache of the ``sighting`` table.

SQL is the source of truth. The index holds one vector per sighting of one model, under the
sighting's id, so a hit joins straight to its row, and its manifest names that model by its id
(``reid.embed.model_identity``): an index or a database of another model is refused, never
mixed. The modules:

* ``faiss_index``: :class:`FaissIndex` (ids, training, removal, save/load) and
  :func:`create_index`, over a FAISS factory string;
* ``qdrant_index``: the same on a Qdrant collection (optional ``reidtrace[vectordb]``), and
  ``location``: :func:`open_index` and friends, which take either a FAISS path or an index URL
  (``Settings.index_location``), so the query side opens whichever is configured;
* ``bench_search``: ``reidtrace bench search`` (exact vs approximate search at scale);
* ``manifest``: the manifest beside each index file, the atomic write protocol (temporary file,
  fsync, rename) and the writers' lock;
* ``sync``: :func:`rebuild_index`, :func:`verify_index` and :func:`sync_index` against SQL, and
  :func:`check_store_model` (one model per store).
"""

from indexer.index.faiss_index import FaissIndex, create_index
from indexer.index.location import IndexLocation, as_location, is_index_url, open_index
from indexer.index.manifest import (
    LEGACY_MODEL,
    IndexExpectation,
    IndexManifest,
    manifest_path,
    read_manifest,
)
from indexer.index.sync import (
    SyncReport,
    VerifyReport,
    check_store_model,
    rebuild_index,
    sync_index,
    verify_index,
)

__all__ = [
    "LEGACY_MODEL",
    "FaissIndex",
    "IndexExpectation",
    "IndexLocation",
    "IndexManifest",
    "SyncReport",
    "VerifyReport",
    "as_location",
    "check_store_model",
    "create_index",
    "is_index_url",
    "manifest_path",
    "open_index",
    "read_manifest",
    "rebuild_index",
    "sync_index",
    "verify_index",
]
