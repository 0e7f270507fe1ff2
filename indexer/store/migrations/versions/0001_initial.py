"""Initial schema: cameras, videos, tracks, detections, sightings, jobs, index state.

Written from ``alembic revision --autogenerate`` and tidied by hand. A migration is frozen
history: it never imports ``indexer.store.models`` (which keeps changing), so types and names
are spelled out here. ``tests/indexer/store/test_migrations.py`` checks that head matches the
models on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)  # indexer.store.models.UTCDateTime stores this


def upgrade() -> None:
    op.create_table(
        "camera",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Double(), nullable=False),
        sa.Column("homography", sa.JSON(), nullable=True),
        sa.Column("ground_units", sa.String(length=8), nullable=True),
        sa.CheckConstraint(
            "ground_units IS NULL OR ground_units = 'm'", name=op.f("ck_camera_ground_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera")),
        sa.UniqueConstraint("name", name=op.f("uq_camera_name")),
    )
    op.create_table(
        "index_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_index_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_state")),
    )
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'cancelled')",
            name=op.f("ck_job_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index(op.f("ix_job_status"), "job", ["status"])
    op.create_table(
        "video",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("start_time", UTC_TIME, nullable=False),
        sa.Column("fps", sa.Double(), nullable=False),
        sa.Column("num_frames", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("frames_done", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')", name=op.f("ck_video_status")
        ),
        sa.CheckConstraint("frames_done >= 0", name=op.f("ck_video_frames_done")),
        sa.CheckConstraint("kind IN ('video', 'frames', 'crops')", name=op.f("ck_video_kind")),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["camera.id"], name=op.f("fk_video_camera_id_camera"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video")),
        sa.UniqueConstraint(
            "camera_id", "content_hash", name=op.f("uq_video_camera_id_content_hash")
        ),
    )
    op.create_index(op.f("ix_video_status"), "video", ["status"])
    op.create_table(
        "track",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("track_no", sa.Integer(), nullable=False),
        sa.Column("start_frame", sa.Integer(), nullable=False),
        sa.Column("end_frame", sa.Integer(), nullable=False),
        sa.Column("start_time", UTC_TIME, nullable=False),
        sa.Column("end_time", UTC_TIME, nullable=False),
        sa.Column("num_detections", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["camera.id"], name=op.f("fk_track_camera_id_camera"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["video_id"], ["video.id"], name=op.f("fk_track_video_id_video"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track")),
        sa.UniqueConstraint("video_id", "track_no", name=op.f("uq_track_video_id_track_no")),
    )
    op.create_index(op.f("ix_track_camera_id_start_time"), "track", ["camera_id", "start_time"])
    op.create_table(
        "detection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("frame_idx", sa.Integer(), nullable=False),
        sa.Column("time", UTC_TIME, nullable=False),
        sa.Column("x1", sa.REAL(), nullable=False),
        sa.Column("y1", sa.REAL(), nullable=False),
        sa.Column("x2", sa.REAL(), nullable=False),
        sa.Column("y2", sa.REAL(), nullable=False),
        sa.Column("confidence", sa.REAL(), nullable=False),
        sa.Column("foot_x", sa.REAL(), nullable=True),
        sa.Column("foot_y", sa.REAL(), nullable=True),
        sa.ForeignKeyConstraint(
            ["track_id"], ["track.id"], name=op.f("fk_detection_track_id_track"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["video_id"], ["video.id"], name=op.f("fk_detection_video_id_video"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detection")),
        sa.UniqueConstraint(
            "video_id",
            "track_id",
            "frame_idx",
            name=op.f("uq_detection_video_id_track_id_frame_idx"),
        ),
    )
    op.create_index(op.f("ix_detection_track_id_frame_idx"), "detection", ["track_id", "frame_idx"])
    op.create_index(op.f("ix_detection_video_id_frame_idx"), "detection", ["video_id", "frame_idx"])
    op.create_table(
        "sighting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("detection_id", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.Column("quality", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["detection_id"],
            ["detection.id"],
            name=op.f("fk_sighting_detection_id_detection"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["track_id"], ["track.id"], name=op.f("fk_sighting_track_id_track"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sighting")),
        sa.UniqueConstraint("detection_id", name=op.f("uq_sighting_detection_id")),
        sqlite_autoincrement=True,  # FAISS ids are sighting ids: never reuse one
    )
    op.create_index(op.f("ix_sighting_model_id"), "sighting", ["model", "id"])
    op.create_index(op.f("ix_sighting_track_id"), "sighting", ["track_id"])


def downgrade() -> None:
    for table in ("sighting", "detection", "track", "video", "job", "index_state", "camera"):
        op.drop_table(table)  # drops the table's indexes with it
