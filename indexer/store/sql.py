"""``SqlStore``: the ``Store`` protocol over :func:`indexer.store.repo.commit_chunk`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from indexer.store import repo
from indexer.store.db import make_session_factory
from indexer.store.schemas import ChunkResult, SightingCreate
from reid.detections import Detections

__all__ = ["SqlStore"]


class SqlStore:
    """Writes each chunk in its own session and transaction, so a pipeline holds no session
    (and no database lock) while it decodes and embeds the next chunk."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = make_session_factory(engine)

    def write(
        self,
        video_id: int,
        detections: Detections,
        *,
        frames_done: int,
        sightings: Sequence[SightingCreate] = (),
    ) -> ChunkResult:
        with self._sessions() as session:
            return repo.commit_chunk(
                session=session,
                video_id=video_id,
                frames_done=frames_done,
                detections=detections,
                sightings=sightings,
            )
