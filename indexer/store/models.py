"""SQL tables (SQLAlchemy 2 typed ORM), after the FastAPI full-stack template's ``models.py``.

SQL is the source of truth for everything ingestion produced; the FAISS index is a cache that
``indexer.index.rebuild_index`` can always recreate from the ``sighting`` table.

Conventions, and why:

* Every time is a timezone-aware UTC ``datetime`` (:class:`UTCDateTime`). SQLite has no
  timezone-aware type, so the value is normalised to UTC on the way in and tagged UTC on the way
  out; a naive ``datetime`` is refused because it is ambiguous (a bug, hence ``ValueError``).
* Natural keys are unique constraints (``track(video_id, track_no)``,
  ``detection(video_id, track_id, frame_idx)``, ``sighting(detection_id)``,
  ``video(camera_id, content_hash)``): they are what makes re-running an ingestion chunk after a
  crash a no-op (``repo.commit_chunk``).
* ``sighting.id`` is the FAISS id. The table uses SQLite ``AUTOINCREMENT`` so an id is never
  reused after a delete; a reused id could silently point a stale index entry at a new row.
  (PostgreSQL sequences never reuse ids.)
* Foreign keys cascade on delete at the database level (SQLite runs with ``foreign_keys=ON``),
  so deleting a video removes its tracks, detections and sightings in one statement.
* Constraint names follow :data:`NAMING_CONVENTION` so Alembic migrations (SQLite batch mode
  included) can refer to them by name.

Schema changes go through Alembic (``indexer/store/migrations``); ``create_all()`` is for tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    REAL,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "JOB_STATUSES",
    "VIDEO_KINDS",
    "VIDEO_STATUSES",
    "Base",
    "Camera",
    "Detection",
    "IndexState",
    "Job",
    "Person",
    "PersonState",
    "Sighting",
    "Track",
    "UTCDateTime",
    "Video",
    "utcnow",
]

VIDEO_STATUSES = ("pending", "running", "done", "failed")
VIDEO_KINDS = ("video", "frames", "crops")
JOB_STATUSES = ("pending", "running", "done", "failed", "cancelled")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the only kind of time this store keeps)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC ``datetime`` on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite keeps the UTC wall time as text. Reading always
    yields an aware UTC value, so comparisons never mix naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        float: Double(),
        bytes: LargeBinary(),
        dict[str, Any]: JSON(),
        list[list[float]]: JSON(),
    }


class Camera(Base):
    """One fixed camera; ``homography`` maps image pixels to ground coordinates."""

    __tablename__ = "camera"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    width: Mapped[int]
    height: Mapped[int]
    fps: Mapped[float]
    homography: Mapped[list[list[float]] | None]  # 3x3, image -> ground
    ground_units: Mapped[str | None] = mapped_column(String(8))  # "m" or None

    videos: Mapped[list[Video]] = relationship(back_populates="camera", passive_deletes=True)

    __table_args__ = (
        CheckConstraint("ground_units IS NULL OR ground_units = 'm'", name="ground_units"),
    )


class Video(Base):
    """One video file of one camera, and its ingestion checkpoint (``frames_done``)."""

    __tablename__ = "video"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the file
    start_time: Mapped[datetime]
    fps: Mapped[float]
    num_frames: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # "video" (a file), "frames" (a folder of images) or "crops" (a Market-format sequence: no
    # frame pixels, no positions, so contacts there are only co-appearances in time)
    kind: Mapped[str] = mapped_column(String(16), default="video")
    error: Mapped[str | None] = mapped_column(Text)
    frames_done: Mapped[int] = mapped_column(default=0)  # frames whose rows are all committed
    # The pipeline's in-memory state (tracker, pending crops) as of ``frames_done``, written in
    # the same transaction as the chunk, so a resumed run continues exactly where it stopped.
    checkpoint: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    camera: Mapped[Camera] = relationship(back_populates="videos")

    __table_args__ = (
        UniqueConstraint("camera_id", "content_hash"),
        CheckConstraint(f"status IN {VIDEO_STATUSES!r}", name="status"),
        CheckConstraint(f"kind IN {VIDEO_KINDS!r}", name="kind"),
        CheckConstraint("frames_done >= 0", name="frames_done"),
        Index(None, "status"),
    )


class Track(Base):
    """One person's continuous presence in one video (the tracker's ``track_no``)."""

    __tablename__ = "track"

    id: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("camera.id", ondelete="CASCADE"))
    track_no: Mapped[int]
    start_frame: Mapped[int]
    end_frame: Mapped[int]  # inclusive
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    num_detections: Mapped[int]
    # L2-normalised mean of the sightings' vectors, float32 bytes; None until it has sightings.
    embedding: Mapped[bytes | None]
    # The cross-camera person (indexer.query.persons); None until association has seen the track.
    # SET NULL on delete: dropping persons (a rebuild) leaves the tracks to be assigned again.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    person_confidence: Mapped[float | None]  # 0..1: how sure the track belongs to its person

    __table_args__ = (
        UniqueConstraint("video_id", "track_no"),
        Index(None, "camera_id", "start_time"),
        Index(None, "person_id"),
    )

    @property
    def has_embedding(self) -> bool:
        return self.embedding is not None


class Person(Base):
    """One person across cameras: the tracks whose ``person_id`` points here.

    Written only by ``indexer.query.persons``; ids stay stable across incremental updates (new
    tracks join or start persons) and change only when association is rebuilt.
    """

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonState(Base):
    """The one row recording how the persons were built (embedder, settings), so a query can
    tell stale persons from current ones (``indexer.query.persons.ensure_persons``)."""

    __tablename__ = "person_state"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    model: Mapped[str] = mapped_column(String(200))  # embedder of the track embeddings used
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    generation: Mapped[int] = mapped_column(default=0)  # +1 on every rebuild
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class Detection(Base):
    """Every tracked box (trajectories, contacts, MOT export); ``foot_*`` in ground units.

    ``confidence`` is the detector's score, or 0 for a box the tracker interpolated across a
    short gap (``IngestConfig.max_gap``, frames skipped by ``detect_stride``): positions, not
    detections, so no crop is ever taken from one.
    """

    __tablename__ = "detection"

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("track.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"))
    frame_idx: Mapped[int]
    time: Mapped[datetime]
    # float32 is plenty for pixels and metres, and this is the biggest table.
    x1: Mapped[float] = mapped_column(REAL)
    y1: Mapped[float] = mapped_column(REAL)
    x2: Mapped[float] = mapped_column(REAL)
    y2: Mapped[float] = mapped_column(REAL)
    confidence: Mapped[float] = mapped_column(REAL)
    foot_x: Mapped[float | None] = mapped_column(REAL)
    foot_y: Mapped[float | None] = mapped_column(REAL)

    __table_args__ = (
        UniqueConstraint("video_id", "track_id", "frame_idx"),
        Index(None, "track_id", "frame_idx"),
        Index(None, "video_id", "frame_idx"),
    )


class Sighting(Base):
    """One embedded crop (the best K per track); ``id`` is its FAISS id."""

    __tablename__ = "sighting"

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("track.id", ondelete="CASCADE"))
    detection_id: Mapped[int] = mapped_column(
        ForeignKey("detection.id", ondelete="CASCADE"), unique=True
    )
    vector: Mapped[bytes]  # little-endian float32 (repo.encode_vector)
    dim: Mapped[int]
    model: Mapped[str] = mapped_column(String(200))  # the embedder's name
    thumbnail: Mapped[bytes | None]  # JPEG
    quality: Mapped[float]

    detection: Mapped[Detection] = relationship()

    __table_args__ = (
        Index(None, "track_id"),
        Index(None, "model", "id"),
        {"sqlite_autoincrement": True},
    )

    @property
    def has_thumbnail(self) -> bool:
        return self.thumbnail is not None


class Job(Base):
    """A unit of background work (``kind`` = "ingest", ...), its parameters and progress."""

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        Index(None, "status"),
    )


class IndexState(Base):
    """The one row that records which FAISS generation was last written (``verify_index``)."""

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    generation: Mapped[int]
    count: Mapped[int]
    embedder: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)
