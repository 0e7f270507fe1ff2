"""A session for the query verbs: the store brought to the code's schema first.

Queries read what ``reidtrace ingest`` wrote; a store ingested before the persons migration
(0002) is upgraded here, as ingestion itself does (``indexer.ingest.runner``), so a trace never
fails on a missing column.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from indexer.store.db import make_engine, make_session_factory
from indexer.store.migrate import upgrade

__all__ = ["query_session"]


@contextmanager
def query_session(db_url: str) -> Iterator[Session]:
    """A session on the migrated store at ``db_url``; the engine is disposed afterwards."""
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()
