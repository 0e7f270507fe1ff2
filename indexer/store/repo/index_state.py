"""The index state: the single row that records which FAISS generation was last written."""

from __future__ import annotations

from sqlalchemy.orm import Session

from indexer.store.models import IndexState

__all__ = ["get_index_state", "set_index_state"]


def get_index_state(*, session: Session) -> IndexState | None:
    return session.get(IndexState, 1)


def set_index_state(
    *, session: Session, generation: int, count: int, embedder: str, path: str
) -> IndexState:
    """Record the FAISS generation just written (the single row, created on first use)."""
    state = session.get(IndexState, 1)
    if state is None:
        state = IndexState(id=1, generation=0, count=0, embedder="", path="")
        session.add(state)
    state.generation = int(generation)
    state.count = int(count)
    state.embedder = embedder
    state.path = str(path)
    session.commit()
    return state
