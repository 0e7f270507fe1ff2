"""Alembic environment for reidtrace's store.

Where the database URL comes from, first match wins:

1. ``config.attributes["connection"]`` / ``["url"]``: set by ``indexer.store.migrate`` (the
   Python API the app and the tests use);
2. ``alembic -c deploy/alembic.ini -x url=... upgrade head``;
3. ``sqlalchemy.url`` in the ini file, when set;
4. reidtrace's settings: ``REIDTRACE_DATABASE_URL``, the config file, or the embedded default
   (``sqlite:///<REIDTRACE_HOME>/reidtrace.db``), so a bare ``alembic upgrade head`` migrates
   the same database the app uses.

The engine comes from ``indexer.store.db.make_engine`` so SQLite gets the same pragmas as the
app and ``postgresql://`` URLs go through psycopg 3. SQLite runs in batch mode, because it can
only ALTER a table by copying it.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from indexer.store.db import make_engine, normalize_url
from indexer.store.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    given = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if given:
        return str(given)
    ini = config.get_main_option("sqlalchemy.url")
    if ini:
        return ini
    from indexer.settings import load_settings

    return load_settings().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """``alembic upgrade head --sql``: print the SQL instead of running it."""
    url = normalize_url(_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
