"""Connecting to the database and bringing it to the newest migration."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import DatabaseError
from tracker.store.schema import serialize_json

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration. Every command checks the database against it before anything else, so
# it is a constant rather than Alembic's answer (loading Alembic and the migrations costs a
# quarter of a second); a test keeps it equal to the head of migrations/versions.
HEAD_REVISION = "0002"

# The top-level migrations/ directory, installed as the tracker.migrations package.
MIGRATIONS_DIR = Path(str(importlib.import_module("tracker.migrations").__file__)).parent
# Set on a connection whose next transaction writes: on SQLite it then starts with
# BEGIN IMMEDIATE, taking the write lock up front instead of failing to upgrade a read lock.
WRITE = {"tracker_write": True}


def create_engine(url: str, *, busy_timeout: float = 5.0) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys.

    The daemon's own writes take milliseconds, so five seconds only run out when something
    else holds the lock; the daemon then keeps its results in memory and retries, and a
    shutdown's last write still fits in the ten seconds SIGTERM allows.
    """
    options: dict[str, Any] = {"json_serializer": serialize_json}
    if url.startswith("postgresql"):
        # A server restarted or a connection killed: found out at checkout and replaced.
        options["pool_pre_ping"] = True
        options["connect_args"] = {"connect_timeout": 10}
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module's own transaction handling defers BEGIN and skips it for DDL;
        # SQLAlchemy's documented workaround is to turn it off and emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # 32 MiB of page cache (the default is 2): the history index's pages that polls write
        # to stay in memory as the table grows (README, Performance).
        cursor.execute("PRAGMA cache_size = -32768")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("tracker_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def describe(engine: Engine) -> str:
    """The engine's URL with any password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot read the database {describe(engine)}: {_reason(exc)}") from exc


def upgrade(engine: Engine) -> None:
    """Migrate to head; concurrent callers wait for each other (SQLite write lock, PostgreSQL
    advisory lock in env.py) and the later ones find nothing left to do."""
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    try:
        with engine.connect() as connection:
            connection.execution_options(**WRITE)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"cannot migrate the database {describe(engine)}: {_reason(exc)}"
        ) from exc
    except CommandError as exc:  # e.g. a revision from a newer tracker
        raise DatabaseError(
            f"cannot migrate the database {describe(engine)}: {exc}; is this tracker older "
            "than the one that last migrated it?"
        ) from exc


def ensure_schema(engine: Engine) -> None:
    """Bring the database to head unless it is there already (the common, cheap case)."""
    if _stored_revision(engine) != HEAD_REVISION:
        upgrade(engine)


def _stored_revision(engine: Engine) -> str | None:
    """The revision in alembic_version, or None where it cannot be read (a new database;
    upgrade() then reports any real trouble)."""
    try:
        with engine.connect() as connection:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return revision.scalar()
    except SQLAlchemyError:
        return None


@contextmanager
def reported_errors() -> Iterator[None]:
    """The database's failures as DatabaseError with the driver's one-line reason (commands
    print that, not a traceback)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise DatabaseError(f"the database failed: {_reason(exc)}") from exc


def _reason(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return str(original if original is not None else exc).strip().splitlines()[0]
