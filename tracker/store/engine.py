"""Connecting to the database: engines tuned for SQLite and PostgreSQL, and how their failures
read in one line."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import DatabaseError
from tracker.store.schema import serialize_json

# tracker's statements on SQLite need RETURNING (3.35) and the JSON functions (built in from
# 3.38, in most builds before): a daemon without them would fail every write and retry for ever.
OLDEST_SQLITE = (3, 35, 0)

# Set on a connection whose next transaction writes: on SQLite it then starts with
# BEGIN IMMEDIATE, taking the write lock up front instead of failing to upgrade a read lock.
WRITE = {"tracker_write": True}


def create_engine(url: str, *, busy_timeout: float = 5.0, read_only: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys.
    ``read_only``: nothing run on it writes (SQLite's query_only, PostgreSQL's read-only
    transactions), and SQLite's journal mode is left as it is.

    The daemon's own writes take milliseconds, so five seconds only run out when something
    else holds the lock; the daemon then keeps its results in memory and retries, and a
    shutdown's last write still fits in the ten seconds SIGTERM allows.
    """
    options: dict[str, Any] = {"json_serializer": serialize_json}
    if url.startswith("postgresql"):
        # A server restarted or a connection killed: found out at checkout and replaced.
        options["pool_pre_ping"] = True
        options["connect_args"] = {"connect_timeout": 10}
        if read_only:
            options["connect_args"]["options"] = "-c default_transaction_read_only=on"
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        _check_sqlite()
        _configure_sqlite(engine, busy_timeout, read_only)
    return engine


def sqlite_path(engine: Engine) -> Path | None:
    """The file of an SQLite engine, absolute; None for another database."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return Path(engine.url.database).expanduser().absolute()


def as_it_stands(path: Path) -> Engine:
    """A read-only engine on the SQLite file ``path`` opened as immutable: what reads a WAL
    database in a directory this process may not write, where SQLite cannot make the shared
    memory file it reads through. No writer can be at work there (it would have made that
    file), so reading the file as it stands reads what was last written."""
    return create_engine(f"sqlite:///file:{quote(str(path))}?immutable=1&uri=true", read_only=True)


def cannot_write_here(exc: BaseException | None) -> bool:
    """Whether ``exc`` is SQLite failing for want of the right to write the file or its
    directory (or to open the file for writing)."""
    original = getattr(exc, "orig", None)
    code = getattr(original, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)


def _check_sqlite() -> None:
    oldest = ".".join(map(str, OLDEST_SQLITE))
    needs = f"tracker needs SQLite {oldest} or newer, with its JSON functions"
    if sqlite3.sqlite_version_info < OLDEST_SQLITE:
        raise DatabaseError(f"{needs}; Python's sqlite3 has SQLite {sqlite3.sqlite_version}")
    try:
        with closing(sqlite3.connect(":memory:")) as probe:
            probe.execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.DatabaseError as exc:  # "no such table: json_each"
        raise DatabaseError(f"{needs}; this one has none ({exc})") from exc


def _configure_sqlite(engine: Engine, busy_timeout: float, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module's own transaction handling defers BEGIN and skips it for DDL;
        # SQLAlchemy's documented workaround is to turn it off and emit BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA query_only = ON" if read_only else "PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # 32 MiB of page cache (the default is 2): the history index's pages that polls write
        # to stay in memory as the table grows (docs/performance.md).
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


@contextmanager
def reported_errors() -> Iterator[None]:
    """The database's failures as DatabaseError with the driver's one-line reason (commands
    print that, not a traceback)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise DatabaseError(f"the database failed: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's wrapping (the type's name for an
    exception that says nothing)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
