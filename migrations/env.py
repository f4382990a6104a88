"""Alembic environment: the URL comes from tracker's own settings (TRACKER_DATABASE_URL)."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tracker.settings import load_settings
from tracker.store.engine import WRITE, create_engine
from tracker.store.schema import metadata

# Any constant will do; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_KEY = 0x7472_6163_6B65_72

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings(["database_url"]).database_url


def _include(obj: Any, name: str | None, kind: str, reflected: bool, compared: Any) -> bool:
    """Objects of one dialect only (the feed's index, PostgreSQL's) are left out elsewhere, and
    the partitions of ``snapshots`` on PostgreSQL are parts of it, so that comparing the models
    with a database finds nothing missing or extra."""
    if kind == "table" and reflected and name is not None and name.startswith("snapshots_"):
        return False
    only_on = getattr(obj, "info", {}).get("only_on")
    return only_on is None or only_on == context.get_bind().dialect.name


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=_database_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include,
        render_as_batch=connection.dialect.name == "sqlite",
        # Alembic assumes SQLite cannot roll back DDL because of the sqlite3 module's own
        # transaction handling, which tracker.store.engine turns off; one transaction (BEGIN
        # IMMEDIATE) then holds the write lock from reading the revision to the last migration.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several daemons starting at once take turns; the later ones find the schema at head.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_database_url())
    try:
        with engine.connect() as connection:
            connection.execution_options(**WRITE)
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
