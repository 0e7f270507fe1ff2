"""Engines: SQLite pragmas, URL rewriting and the errors users see."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from indexer.store.db import make_engine, normalize_url, safe_url
from reid.errors import ReidTraceError


def test_sqlite_file_gets_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'new' / 'folder' / 'r.db'}")  # folder created
    with eng.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    eng.dispose()


def test_memory_sqlite_is_shared_between_connections() -> None:
    eng = make_engine("sqlite://")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with eng.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:pw@h:5432/db", "postgres://u:pw@h/db", "postgresql+psycopg://u:pw@h/db"],
)
def test_postgres_urls_go_through_psycopg3(url: str) -> None:
    assert normalize_url(url).drivername == "postgresql+psycopg"
    assert "pw" not in safe_url(normalize_url(url))


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("not a url", "cannot parse"),
        ("mysql://u@h/db", "unsupported database backend"),
        ("postgresql://nobody:secret@127.0.0.1:1/x", "cannot connect"),
    ],
)
def test_bad_urls_say_what_and_hint(url: str, match: str) -> None:
    with pytest.raises(ReidTraceError, match=match) as err:
        make_engine(url)
    assert err.value.hint
    assert "secret" not in str(err.value)
