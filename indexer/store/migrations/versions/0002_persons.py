"""Cross-camera persons: a ``person`` table, ``track.person_id`` + ``track.person_confidence``,
and the single-row ``person_state`` (how the persons were built) for issue 22.

A link column on ``track`` rather than a link table: a track belongs to at most one person, and
the trajectory and contact queries read "the tracks of person P" through one index. Frozen
history: types and names are spelled out, never imported from ``indexer.store.models``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)  # indexer.store.models.UTCDateTime stores this


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    op.create_table(
        "person_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_person_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_state")),
    )
    with op.batch_alter_table("track") as batch:  # SQLite rebuilds the table; PostgreSQL alters
        batch.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("person_confidence", sa.Double(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_track_person_id_person"), "person", ["person_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index(op.f("ix_track_person_id"), ["person_id"])


def downgrade() -> None:
    with op.batch_alter_table("track") as batch:
        batch.drop_index(op.f("ix_track_person_id"))
        batch.drop_constraint(op.f("fk_track_person_id_person"), type_="foreignkey")
        batch.drop_column("person_confidence")
        batch.drop_column("person_id")
    op.drop_table("person_state")
    op.drop_table("person")
