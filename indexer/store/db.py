"""Engine and session factory for the two supported backends: SQLite and PostgreSQL.

SQLite (the embedded default) is tuned for one ingesting writer beside readers (the API):

* WAL journal, so readers never block the writer and the writer never blocks readers;
* ``synchronous=NORMAL`` (safe with WAL: a power cut may lose the last commits, never corrupt);
* ``foreign_keys=ON`` (SQLite ignores ``ON DELETE CASCADE`` without it);
* ``busy_timeout``, so a second writer waits for the lock instead of failing at once;
* ``check_same_thread=False``, because FastAPI runs sync routes in a thread pool and SQLAlchemy's
  pool already hands each connection to one thread at a time. An in-memory database uses a
  single shared connection (``StaticPool``) so every session sees the same data.

PostgreSQL goes through psycopg 3: ``postgresql://`` and ``postgres://`` URLs are rewritten to
``postgresql+psycopg://``. Bad URLs, missing drivers and unreachable servers become one
``ReidTraceError`` with a hint, with the password masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from reid.errors import ReidTraceError

__all__ = ["make_engine", "make_session_factory", "normalize_url", "safe_url"]

BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5
URL_HINT = 'use "sqlite:///path/to/reidtrace.db" or "postgresql://user:password@host:5432/dbname"'


def safe_url(url: URL | str) -> str:
    """The URL as text with the password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``, route PostgreSQL through psycopg 3, refuse other backends."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise ReidTraceError(f"cannot parse database URL {url!r}", hint=URL_HINT) from err
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ReidTraceError(
            f"unsupported database backend {backend!r} in {safe_url(parsed)}",
            hint=f"reidtrace supports SQLite and PostgreSQL: {URL_HINT}",
        )
    return parsed


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, memory: bool) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def make_engine(url: str | URL, *, check: bool = True, echo: bool = False) -> Engine:
    """An ``Engine`` for ``url``; with ``check`` it connects once so problems surface here.

    A SQLite file's parent folder is created when missing (the default lives under
    ``REIDTRACE_HOME``, which may not exist yet).
    """
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    memory = False
    if parsed.get_backend_name() == "sqlite":
        memory = _is_memory(parsed)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        if memory:
            kwargs["poolclass"] = StaticPool
        else:
            parent = Path(parsed.database or "").expanduser().parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ReidTraceError(
                    f"cannot create the folder {parent} for the SQLite database: {err}",
                    hint="point database_url (REIDTRACE_DATABASE_URL) at a writable place",
                ) from err
    else:
        kwargs["pool_pre_ping"] = True
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as err:
        raise ReidTraceError(
            f"no database driver for {safe_url(parsed)}: {err}",
            hint='install psycopg 3 (pip install "psycopg[binary]") and use postgresql:// URLs',
        ) from err
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            _sqlite_pragmas(dbapi_conn, record, memory=memory)

    if check:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as err:
            engine.dispose()
            reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
            raise ReidTraceError(
                f"cannot connect to the database {safe_url(parsed)}: {reason}",
                hint="is the server running, the database created and the URL right? "
                "Check database_url (REIDTRACE_DATABASE_URL)",
            ) from err
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after ``commit`` (results outlive the transaction)."""
    return sessionmaker(engine, expire_on_commit=False)
