"""indexer: everything that stores and retrieves.

SQL store (``indexer.store``: SQLAlchemy models, repo functions, Alembic migrations), the FAISS
vector index (``indexer.index``, a rebuildable cache of the ``sighting`` table: SQL is the
source of truth) and, later, the query engine (search by image, trajectories, co-occurrence
contacts). Depends on ``reid`` only; never on ``api``, ``ui``, ``compression`` or torch.
"""

from indexer.index import FaissIndex, create_index
from indexer.protocols import Store, VectorIndex
from indexer.store.sql import SqlStore

__all__ = ["FaissIndex", "SqlStore", "Store", "VectorIndex", "create_index"]
