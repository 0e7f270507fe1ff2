"""``SqlStore``: the ``Store`` protocol over the repo functions (:mod:`indexer.store.repo`)."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from sqlalchemy import Engine

from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from indexer.store.schemas import ChunkResult, OpenedVideo, SightingCreate, VideoSpec
from reid.detections import Detections
from reid.errors import ReidTraceError

__all__ = ["SqlStore"]

CLOSING_STATUSES = ("done", "failed")


class SqlStore:
    """Runs each call in its own session, so a pipeline holds no session (and no database
    lock) while it decodes and embeds the next chunk.

    ``SqlStore(engine)`` uses an engine the caller owns (and disposes); ``SqlStore.from_url``
    makes and owns one, disposed by :meth:`close` or at the end of a ``with`` block.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = make_session_factory(engine)
        self._owns_engine = False

    @classmethod
    def from_url(cls, db_url: str) -> SqlStore:
        """A store on its own engine for ``db_url`` (connects once, so a bad URL fails here)."""
        store = cls(make_engine(db_url))
        store._owns_engine = True
        return store

    def close(self) -> None:
        """Dispose of the engine if this store made it (an engine passed in stays open: an
        in-memory SQLite database would vanish with it)."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open_video(self, spec: VideoSpec) -> OpenedVideo:
        """Get or create the camera and the video; a video not yet done becomes "running".

        The steps commit one by one, as the repo functions do (camera, video, status); each
        leaves a valid state that the next open picks up, so a run killed in between is
        finished by opening again. A second process opening the same new file at the same
        moment gets the repo's 409 rather than a second ingestion of it.
        """
        with self._sessions() as session:
            camera = repo.get_or_create_camera(
                session=session,
                name=spec.camera,
                width=spec.width,
                height=spec.height,
                fps=spec.fps,
                homography=spec.homography,
                ground_units=spec.ground_units,
            )
            video = repo.find_video_by_hash(
                session=session, camera_id=camera.id, content_hash=spec.content_hash
            )
            if video is None:
                video = repo.create_video(
                    session=session,
                    camera_id=camera.id,
                    path=spec.path,
                    content_hash=spec.content_hash,
                    start_time=spec.start_time,
                    fps=spec.fps,
                    num_frames=spec.num_frames,
                    width=spec.width,
                    height=spec.height,
                    kind=spec.kind,
                )
                before = "new"
            else:
                before = video.status
            if before != "done":
                repo.set_video_status(session=session, video_id=video.id, status="running")
            frames_done, checkpoint = repo.video_checkpoint(session=session, video_id=video.id)
            return OpenedVideo(
                video_id=video.id,
                camera_id=camera.id,
                status=before,
                frames_done=frames_done,
                checkpoint=checkpoint,
            )

    def write_chunk(
        self,
        video_id: int,
        detections: Detections,
        *,
        frames_done: int,
        sightings: Sequence[SightingCreate] = (),
        checkpoint: bytes | None,
    ) -> ChunkResult:
        """One :func:`repo.commit_chunk <indexer.store.repo.commit_chunk>` (one transaction)."""
        with self._sessions() as session:
            return repo.commit_chunk(
                session=session,
                video_id=video_id,
                frames_done=frames_done,
                detections=detections,
                sightings=sightings,
                checkpoint=checkpoint,
            )

    def restart_video(self, video_id: int) -> None:
        """Drop every row of the video and its checkpoint in one transaction (the vector index
        keeps the dropped sightings until ``sync_index``, as after any rewind)."""
        with self._sessions() as session:
            repo.delete_video_rows_after(
                session=session, video_id=video_id, frame=0, drop_checkpoint=True
            )

    def close_video(self, video_id: int, status: str, error: str | None = None) -> int:
        """Set the final status ("done", or "failed" with ``error``); returns the video's
        number of stored tracks."""
        if status not in CLOSING_STATUSES:
            raise ReidTraceError(
                f"cannot close video {video_id} as {status!r}",
                hint=f"close a video as one of {CLOSING_STATUSES}",
            )
        if status == "done" and error is not None:
            raise ReidTraceError(
                f"video {video_id} closed as 'done' with an error ({error!r})",
                hint="close it as 'failed' to keep the error, or leave the error out",
            )
        with self._sessions() as session:
            repo.set_video_status(session=session, video_id=video_id, status=status, error=error)
            return repo.track_count(session=session, video_id=video_id)
