"""Videos: found by content hash, created, moved through their statuses, checkpointed, deleted.

Rewinding a video's rows (``delete_video_rows_after``) lives with the chunk writes in
:mod:`indexer.store.repo.chunks`, whose locking and track refresh it shares.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from indexer.store.models import VIDEO_KINDS, VIDEO_STATUSES, Detection, Sighting, Track, Video
from indexer.store.repo.cameras import get_camera
from indexer.store.schemas import DeletedRows, ResumeState
from reid.errors import ReidTraceError

__all__ = [
    "create_video",
    "delete_video",
    "find_video_by_hash",
    "get_video",
    "resume_state",
    "set_video_status",
    "video_checkpoint",
    "videos_for_camera",
]


def find_video_by_hash(*, session: Session, camera_id: int, content_hash: str) -> Video | None:
    """The video with these bytes from this camera, if it was seen before (resume or skip)."""
    stmt = select(Video).where(Video.camera_id == camera_id, Video.content_hash == content_hash)
    return session.scalars(stmt).one_or_none()


def create_video(
    *,
    session: Session,
    camera_id: int,
    path: str,
    content_hash: str,
    start_time: datetime,
    fps: float,
    num_frames: int,
    width: int,
    height: int,
    kind: str = "video",
) -> Video:
    """A new ``pending`` video; the same file from the same camera twice is refused (409)."""
    if kind not in VIDEO_KINDS:
        raise ValueError(f"video kind must be one of {VIDEO_KINDS}, got {kind!r}")
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise ReidTraceError(
            f"video {path}: start time {start_time.isoformat()} has no time zone",
            hint="give it with a UTC offset, e.g. 2024-05-01T12:00:00Z",
        )
    if fps <= 0 or num_frames < 0 or width <= 0 or height <= 0:
        raise ReidTraceError(
            f"video {path}: bad fps={fps}, num_frames={num_frames} or size {width}x{height}",
            hint="check that the file decodes (a broken header gives zeros)",
        )
    get_camera(session=session, camera_id=camera_id)
    video = Video(
        camera_id=camera_id,
        path=str(path),
        content_hash=content_hash,
        start_time=start_time,
        fps=float(fps),
        num_frames=int(num_frames),
        width=int(width),
        height=int(height),
        status="pending",
        kind=kind,
        frames_done=0,
    )
    session.add(video)
    try:
        session.commit()
    except IntegrityError as err:
        session.rollback()
        old = find_video_by_hash(session=session, camera_id=camera_id, content_hash=content_hash)
        if old is None:
            raise
        raise ReidTraceError(
            f"{path} is already stored as video {old.id} ({old.path}, status {old.status})",
            hint="find_video_by_hash() first to resume or skip it; delete_video() to redo it",
            status=409,
        ) from err
    return video


def get_video(*, session: Session, video_id: int) -> Video:
    video = session.get(Video, video_id)
    if video is None:
        raise ReidTraceError(
            f"no video with id {video_id}", hint="list the videos to see the ids", status=404
        )
    return video


def set_video_status(
    *, session: Session, video_id: int, status: str, error: str | None = None
) -> Video:
    """Move a video to ``status`` ("pending", "running", "done", "failed"); commits."""
    if status not in VIDEO_STATUSES:
        raise ValueError(f"video status {status!r} is not one of {VIDEO_STATUSES}")
    video = get_video(session=session, video_id=video_id)
    video.status = status
    video.error = error
    session.commit()
    return video


def video_checkpoint(*, session: Session, video_id: int) -> tuple[int, bytes | None]:
    """``(frames_done, checkpoint)`` as committed together by the last ``commit_chunk``."""
    row = session.execute(
        select(Video.frames_done, Video.checkpoint).where(Video.id == video_id)
    ).one_or_none()
    if row is None:
        raise ReidTraceError(f"no video with id {video_id}", status=404)
    return int(row[0]), row[1]


def resume_state(*, session: Session, video_id: int) -> ResumeState:
    """Where an interrupted ingestion of ``video_id`` can continue (see :class:`ResumeState`)."""
    video = get_video(session=session, video_id=video_id)
    max_no = session.scalar(select(func.max(Track.track_no)).where(Track.video_id == video_id))
    has_sightings = select(Sighting.id).where(Sighting.track_id == Track.id).exists()
    unfinished = session.scalar(
        select(func.min(Track.start_frame)).where(Track.video_id == video_id, ~has_sightings)
    )
    return ResumeState(
        video_id=video_id,
        status=video.status,
        frames_done=video.frames_done,
        next_track_no=1 if max_no is None else int(max_no) + 1,
        unfinished_from=None if unfinished is None else int(unfinished),
    )


def delete_video(*, session: Session, video_id: int) -> DeletedRows:
    """Delete a video and everything ingested from it (database cascades); commits."""
    get_video(session=session, video_id=video_id)
    in_video = select(Track.id).where(Track.video_id == video_id)
    sids = [
        int(i)
        for i in session.scalars(
            select(Sighting.id).where(Sighting.track_id.in_(in_video)).order_by(Sighting.id)
        )
    ]
    count = select(func.count())
    n_det = session.scalar(count.select_from(Detection).where(Detection.video_id == video_id))
    n_tracks = session.scalar(count.select_from(Track).where(Track.video_id == video_id))
    session.execute(delete(Video).where(Video.id == video_id))
    session.commit()
    session.expunge_all()  # cascaded rows may linger in the identity map
    return DeletedRows(detections=int(n_det or 0), tracks=int(n_tracks or 0), sighting_ids=sids)


def videos_for_camera(*, session: Session, camera_id: int) -> list[Video]:
    return list(
        session.scalars(
            select(Video).where(Video.camera_id == camera_id).order_by(Video.start_time)
        )
    )
