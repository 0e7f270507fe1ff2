"""The contacts bench: a synthetic store written with bulk inserts, reused, and timed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.bench_contacts import CONTACT_ROW_KEYS, bench_contacts, synthesize_tracks
from indexer.query.contacts import find_contacts
from indexer.store.db import make_engine
from indexer.store.models import Detection, Track
from reid.errors import ReidTraceError


def test_the_synthetic_store_has_tracks_detections_and_contacts(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert synthesize_tracks(engine, 400, cameras=4, batch=150)
    assert not synthesize_tracks(engine, 400, cameras=4)  # same parameters: reused
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Track)) == 400
        assert session.scalar(select(func.count()).select_from(Detection)) == 1200
        # walking beside the previous track: same frames, ~1 m apart -> a contact (15 s)
        hits = 0
        for tid in range(2, 400, 2):
            rows = find_contacts(session, [tid], person_of={}).rows
            hits += any(tid - 1 in r.track_ids for r in rows)
        assert hits >= 60  # ~70% of 199 pairs, minus those drawn more than 2 m apart
    with pytest.raises(ReidTraceError, match="already holds other tracks"):
        synthesize_tracks(engine, 800, cameras=4)
    engine.dispose()


def test_a_row_per_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    row = bench_contacts(url, 300, queries=10, cameras=3)
    assert tuple(sorted(row)) == CONTACT_ROW_KEYS
    assert row["database"] == "sqlite" and row["n"] == 300 and not row["cached"]
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert bench_contacts(url, 300, queries=10, cameras=3)["cached"]


def test_the_postgresql_path(pg_url: str) -> None:
    row = bench_contacts(pg_url, 300, queries=10, cameras=3)
    assert row["database"] == "postgresql" and row["contacts_mean"] > 0
