"""What every store shares: the engine, write transactions, and the SQL idioms they repeat."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from tracker.store.engine import WRITE
from tracker.store.schema import PENDING
from tracker.store.wakeups import Wakeups, told

# SQLite before 3.32 allows 999 variables per statement; stay well under it in IN lists.
CHUNK = 500


class SQLStore:
    """A store on a SQLAlchemy engine (SQLite or PostgreSQL); methods are synchronous and run
    on the caller's thread (the daemon's database thread, or a command's)."""

    def __init__(self, engine: Engine, wakeups: Wakeups | None = None) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._wakeups = wakeups or Wakeups(engine)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A transaction that writes (on SQLite it takes the write lock at BEGIN); once it has
        committed, this process's waiters of the topics it told are woken."""
        with self._engine.connect() as connection:
            connection.execution_options(**WRITE)
            try:
                with connection.begin():
                    yield connection
            except BaseException:
                told(connection)
                raise
            topics = told(connection)
        if topics:
            self._wakeups.announce(topics)

    def _insert_ignoring_existing(self, table: Table, keys: list[str]) -> Any:
        """INSERT … ON CONFLICT DO NOTHING, from the dialect in use only: importing
        PostgreSQL's would slow every command on SQLite."""
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(table).on_conflict_do_nothing(index_elements=keys)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def lease_free(table: Table, now: datetime) -> ColumnElement[bool]:
    """Rows of ``table`` no daemon holds at ``now``: never leased, or the lease ran out."""
    return table.c.lease_expires_at.is_(None) | (table.c.lease_expires_at <= now)


def due_pending(table: Table, now: datetime, limit: int, *conditions: Any) -> Any:
    """The keys of up to ``limit`` pending rows due by ``now`` that nobody holds (PostgreSQL:
    skipping rows other daemons are claiming), earliest first."""
    key = list(table.primary_key.columns)
    return (
        select(*key)
        .where(
            table.c.state == PENDING,
            table.c.next_attempt_at <= now,
            lease_free(table, now),
            *conditions,
        )
        .order_by(table.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def counts_by(connection: Connection, column: Any, *conditions: Any) -> dict[str, int]:
    query = select(column, func.count()).where(*conditions).group_by(column)
    return {str(key): count for key, count in connection.execute(query)}


def aware(value: datetime | str | None) -> datetime | None:
    """An aggregate's timestamp: SQLite gives the stored text back, untyped."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
