"""Schema migrations through Alembic's Python API (the scripts live in ``migrations/``).

The app never calls ``create_all()``: a database is brought to the code's schema with
:func:`upgrade` (the embedded SQLite default can do that at start-up) or, in deployments,
``alembic -c deploy/alembic.ini upgrade head``; :func:`check_current` refuses to run against a
database that is behind or ahead, with the command that fixes it.

Every function takes a URL or an ``Engine`` (an in-memory SQLite database exists only inside
its engine, so tests pass the engine).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from indexer.store.db import make_engine, safe_url
from reid.errors import ReidTraceError

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "check_current",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

DbArg = str | URL | Engine


def alembic_config() -> Config:
    """An Alembic ``Config`` for the packaged scripts, without any ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revision() -> str:
    """The revision this code's models correspond to."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its scripts
        raise RuntimeError(f"no Alembic revisions in {MIGRATIONS_DIR}")
    return head


@contextmanager
def _connect(db: DbArg) -> Iterator[Connection]:
    engine = db if isinstance(db, Engine) else make_engine(db)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        if engine is not db:
            engine.dispose()


def current_revision(db: DbArg) -> str | None:
    """The database's Alembic revision (``None`` for a database never migrated)."""
    with _connect(db) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: DbArg, revision: str = "head") -> str | None:
    """Migrate the database up to ``revision``; returns the revision it is at afterwards."""
    with _connect(db) as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        return MigrationContext.configure(conn).get_current_revision()


def downgrade(db: DbArg, revision: str) -> str | None:
    """Migrate down to ``revision`` (``"base"`` drops every table); returns the new revision."""
    with _connect(db) as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        return MigrationContext.configure(conn).get_current_revision()


def check_current(db: DbArg) -> str:
    """The revision, when the database is at this code's head; ``ReidTraceError`` otherwise."""
    head = head_revision()
    current = current_revision(db)
    if current == head:
        return current
    where = safe_url(db.url) if isinstance(db, Engine) else safe_url(db)
    if current is None:
        what = f"the database {where} has no reidtrace schema yet"
    else:
        what = f"the database {where} is at schema revision {current}, this code needs {head}"
    raise ReidTraceError(
        what,
        hint=f"run: alembic -c deploy/alembic.ini -x url='{where}' upgrade head "
        "(back up first; if the database is newer than the code, upgrade reidtrace instead)",
        status=503,
    )
