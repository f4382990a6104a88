"""Writing a tick's polls: statements compiled once, run with the driver's executemany; on
PostgreSQL the snapshots go in by COPY, which took a tenth off its polls' cost, and each task's
UPDATE checks its lease itself, returning the task if it held (docs/performance.md).

Writing polls is the hot path: SQLAlchemy's per-row parameter processing cost more than the
database's own work for these rows (docs/performance.md), so each parameter is converted here
by one plain function chosen from its column's type when the statement is compiled: timestamps
and booleans for SQLite, JSON as text. A parameter whose type is not known refuses to compile,
so a new column cannot slip through unconverted.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Dialect,
    Text,
    bindparam,
    func,
    literal_column,
    null,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import NullType, TypeEngine

from tracker.core.models import FetchResult, PollRecord
from tracker.core.video import is_running
from tracker.store.base import chunks
from tracker.store.schema import RawJSON, UTCDateTime, serialize_json, snapshots, tasks


class BatchStatement:
    """A statement compiled once for a dialect; rows are dicts keyed by parameter name."""

    def __init__(
        self,
        statement: Any,
        dialect: Dialect,
        keys: Sequence[str],
        insert: bool = False,
        by_copy: bool = False,
    ) -> None:
        """``insert``: an INSERT of exactly ``keys``; ``by_copy`` as well: on PostgreSQL its
        rows go in by COPY, which takes columns and values only (no SQL expressions, no
        RETURNING or ON CONFLICT)."""
        positional = copy.copy(dialect)
        positional.paramstyle = "qmark" if dialect.name == "sqlite" else "format"
        positional.positional = True
        # An INSERT is compiled for exactly the columns given; an UPDATE names its parameters.
        compiled = statement.compile(dialect=positional, column_keys=list(keys) if insert else None)
        order = compiled.positiontup or []
        if set(order) != set(keys):
            raise ValueError(f"statement parameters {order} are not the row keys {keys}")
        self._sql = compiled.string
        self._copy = None
        if insert and by_copy and dialect.name == "postgresql":
            quoting = dialect.identifier_preparer
            columns = ", ".join(quoting.quote(name) for name in order)
            self._copy = f"COPY {quoting.format_table(statement.table)} ({columns}) FROM STDIN"
        self._values = operator.itemgetter(*order)
        self._conversions = [
            (index, conversion)
            for index, name in enumerate(order)
            if (conversion := _conversion(name, compiled.binds[name].type, dialect)) is not None
        ]

    def execute(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        params = self._params(rows)
        if self._copy is not None:
            with _driver_cursor(connection, self._copy) as cursor, cursor.copy(self._copy) as copy:
                for values in params:
                    copy.write_row(values)
            return
        connection.exec_driver_sql(self._sql, params)

    def returned(self, connection: Connection, rows: list[dict[str, Any]]) -> list[Any]:
        """PostgreSQL: run the statement for each row; the first column of what each returned."""
        with _driver_cursor(connection, self._sql) as cursor:
            cursor.executemany(self._sql, self._params(rows), returning=True)
            returned: list[Any] = []
            while True:
                returned.extend(row[0] for row in cursor.fetchall())
                if not cursor.nextset():
                    return returned

    def _params(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        params = []
        for row in rows:
            values = list(self._values(row))
            for index, conversion in self._conversions:
                values[index] = conversion(values[index])
            params.append(tuple(values))
        return params


@contextmanager
def _driver_cursor(connection: Connection, statement: str) -> Iterator[Any]:
    """A cursor of the driver's own, for what SQLAlchemy does not carry (COPY, a RETURNING of
    each row of an executemany); its errors raised as SQLAlchemy's, as a statement's are (a
    value the server refuses is a DataError to its callers, a lost connection an
    OperationalError)."""
    dbapi = connection.dialect.loaded_dbapi
    driver: Any = connection.connection.dbapi_connection
    try:
        with driver.cursor() as cursor:
            yield cursor
    except dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc


def _conversion(name: str, type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of ``type_`` reaches the driver, or None when the driver takes it as is."""
    if isinstance(type_, NullType):
        raise ValueError(f"parameter {name!r} has no type: give its bindparam one")
    if isinstance(type_, JSON):
        return _json_text
    if dialect.name != "sqlite":
        return None
    if isinstance(type_, UTCDateTime):
        return UTCDateTime.sqlite_text
    if isinstance(type_, Boolean):
        return int
    return None


def _json_text(value: Any) -> str | None:
    return None if value is None else serialize_json(value)


def _typed(name: str, column: str) -> Any:
    return bindparam(name, type_=tasks.c[column].type)


_POLLED = {
    "last_polled_at": _typed("b_polled_at", "last_polled_at"),
    "next_poll_at": _typed("b_next_poll_at", "next_poll_at"),
    "poll_count": tasks.c.poll_count + literal_column("1"),
    "error_count": _typed("b_error_count", "error_count"),
    "not_found_count": _typed("b_not_found_count", "not_found_count"),
    "last_error": _typed("b_last_error", "last_error"),
    "lease_owner": null(),
    "lease_expires_at": null(),
}
_FINISHING = {
    "finished": _typed("b_finished", "finished"),
    "finish_reason": _typed("b_finish_reason", "finish_reason"),
    "finished_at": _typed("b_finished_at", "finished_at"),
}


def _keep_known(column: str) -> Any:
    """Relays omit fields on some answers: a missing value keeps the one seen before."""
    return func.coalesce(_typed(f"b_{column}", column), tasks.c[column])


def _keep_first(column: str) -> Any:
    """A moment seen once: the first poll to see it sets it, later ones leave it."""
    return func.coalesce(tasks.c[column], _typed(f"b_{column}", column))


_WHERE_TASK = tasks.c.task_id == bindparam("b_task_id", type_=Text())
_ANSWER = {
    "progress": _keep_known("progress"),
    "model": _keep_known("model"),
    "seconds": _keep_known("seconds"),
    "size": _keep_known("size"),
    "created_at": _keep_known("created_at"),
    "completed_at": _keep_known("completed_at"),
    "expires_at": _keep_known("expires_at"),
    "first_running_at": _keep_first("first_running_at"),
}
_UPDATE_ANSWERED = (
    sql_update(tasks)
    .where(_WHERE_TASK)
    .values(status=_typed("b_status", "status"), **_ANSWER, **_POLLED, **_FINISHING)
)
# Most polls see the status the task had and do not finish it. Leaving status and the finish
# columns out of their UPDATE spares SQLite the indexes on them (the status index and the
# partial indexes on unfinished tasks), which it rewrites whenever a column they use is set.
# PostgreSQL gains nothing by it: a poll moves next_poll_at, which is indexed, so the update is
# never HOT and every index gets its new entry anyway (measured: no less work, docs/performance.md).
_UPDATE_STEADY = sql_update(tasks).where(_WHERE_TASK).values(**_ANSWER, **_POLLED)
_UPDATE_UNANSWERED = sql_update(tasks).where(_WHERE_TASK).values(**_POLLED, **_FINISHING)


def _if_held(statement: Any) -> Any:
    """``statement`` for a task its owner still holds, returning the task's ID if it was."""
    owner = bindparam("b_owner", type_=tasks.c.lease_owner.type)
    return statement.where(tasks.c.lease_owner == owner).returning(tasks.c.task_id)


_SNAPSHOT_KEYS = (
    "task_id",
    "polled_at",
    "http_status",
    "status",
    "progress",
    "error",
    "body",
    "finished",
    "latency_ms",
    "kept",
)
_POLLED_KEYS = (
    "b_task_id",
    "b_polled_at",
    "b_next_poll_at",
    "b_error_count",
    "b_not_found_count",
    "b_last_error",
)
_FINISHING_KEYS = ("b_finished", "b_finish_reason", "b_finished_at")
_ANSWER_KEYS = (
    "b_progress",
    "b_model",
    "b_seconds",
    "b_size",
    "b_created_at",
    "b_completed_at",
    "b_expires_at",
    "b_first_running_at",
)


class PollWrites:
    """The statements that write a batch of polls, compiled for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        # On PostgreSQL each task's UPDATE checks the lease itself (locking the row, as a
        # SELECT … FOR UPDATE before it did at a cost of its own) and says whether it held:
        # executemany returns rows there. SQLite locks the whole file for the transaction.
        self._checks_leases = checks = dialect.name == "postgresql"
        owner = ("b_owner",) if checks else ()
        self._insert_snapshots = BatchStatement(
            snapshots.insert().inline(), dialect, _SNAPSHOT_KEYS, insert=True, by_copy=True
        )
        self._update_answered = BatchStatement(
            _if_held(_UPDATE_ANSWERED) if checks else _UPDATE_ANSWERED,
            dialect,
            (*_POLLED_KEYS, *_FINISHING_KEYS, "b_status", *_ANSWER_KEYS, *owner),
        )
        self._update_steady = (
            BatchStatement(_UPDATE_STEADY, dialect, (*_POLLED_KEYS, *_ANSWER_KEYS))
            if dialect.name == "sqlite"
            else None
        )
        self._update_unanswered = BatchStatement(
            _if_held(_UPDATE_UNANSWERED) if checks else _UPDATE_UNANSWERED,
            dialect,
            (*_POLLED_KEYS, *_FINISHING_KEYS, *owner),
        )

    def write_held(
        self, connection: Connection, owner: str, records: Sequence[PollRecord]
    ) -> list[PollRecord]:
        """Write those of ``records`` whose tasks ``owner`` still holds, and return them."""
        if self._checks_leases:
            held: set[str] = set()
            for statement, rows in self._task_updates(records, {}, owner):
                held.update(statement.returned(connection, rows))
            kept = [record for record in records if record.task_id in held]
        else:
            statuses = _held_statuses(connection, owner, records)
            kept = [record for record in records if record.task_id in statuses]
            for statement, rows in self._task_updates(kept, statuses, None):
                statement.execute(connection, rows)
        stored = [_snapshot_row(r) for r in kept if r.store_snapshot]
        if stored:
            self._insert_snapshots.execute(connection, stored)
        return kept

    def _task_updates(
        self, records: Sequence[PollRecord], statuses: Mapping[str, str | None], owner: str | None
    ) -> list[tuple[BatchStatement, list[dict[str, Any]]]]:
        """The UPDATEs of ``records``' tasks, each with its rows; ``statuses`` holds each
        task's status as stored before them (SQLite's narrower statement needs it), ``owner``
        the lease holder the statements check (PostgreSQL's)."""
        answered: list[dict[str, Any]] = []
        steady: list[dict[str, Any]] = []
        unanswered: list[dict[str, Any]] = []
        for record in records:
            row = _task_row(record)
            if owner is not None:
                row["b_owner"] = owner
            video = record.fetch.video
            if video is None:
                unanswered.append(row)
            elif (
                self._update_steady is None
                or record.finished
                or video.status != statuses[record.task_id]
            ):
                answered.append(row)
            else:
                steady.append(row)
        updates = (
            (self._update_answered, answered),
            (self._update_steady, steady),
            (self._update_unanswered, unanswered),
        )
        return [(statement, rows) for statement, rows in updates if statement and rows]


def _held_statuses(
    connection: Connection, owner: str, records: Sequence[PollRecord]
) -> dict[str, str | None]:
    """The stored status of each task of ``records`` that ``owner`` holds, its row locked."""
    statuses: dict[str, str | None] = {}
    for chunk in chunks([record.task_id for record in records]):
        rows = connection.execute(
            select(tasks.c.task_id, tasks.c.status)
            .where(tasks.c.task_id.in_(chunk), tasks.c.lease_owner == owner)
            .with_for_update()
        )
        statuses.update((task_id, status) for task_id, status in rows)
    return statuses


def without_answer(record: PollRecord, exc: Exception) -> PollRecord:
    """The record as an error poll, keeping only what any database can store."""
    error = {
        "type": "unstorable",
        "message": f"the answer could not be stored: {type(exc).__name__}",
    }
    fetch = FetchResult(record.fetch.http_status, record.fetch.latency_ms, None, None, error)
    return replace(record, fetch=fetch, last_error=error["message"])


def _snapshot_row(record: PollRecord) -> dict[str, Any]:
    fetch = record.fetch
    video = fetch.video
    return {
        "task_id": record.task_id,
        "polled_at": record.polled_at,
        "http_status": fetch.http_status,
        "status": video.status if video else None,
        "progress": video.progress if video else None,
        "error": record.snapshot_error,
        "body": RawJSON(fetch.body) if fetch.body is not None else None,
        "finished": record.finished,
        "latency_ms": fetch.latency_ms,
        "kept": record.kept,
    }


def _task_row(record: PollRecord) -> dict[str, Any]:
    video = record.fetch.video
    finished_at = record.polled_at if record.finished else None
    row: dict[str, Any] = {
        "b_task_id": record.task_id,
        "b_polled_at": record.polled_at,
        # A finished task is never polled again: its next_poll_at is the time it finished, as
        # every statement that finishes a task sets it (docs/tables.md).
        "b_next_poll_at": finished_at or record.next_poll_at,
        "b_error_count": record.error_count,
        "b_not_found_count": record.not_found_count,
        "b_last_error": record.last_error,
        "b_finished": record.finished,
        "b_finish_reason": record.finish_reason.value if record.finish_reason else None,
        "b_finished_at": finished_at,
    }
    if video is not None:
        row.update(
            b_status=video.status,
            b_progress=video.progress,
            b_model=video.model,
            b_seconds=video.seconds,
            b_size=video.size,
            b_created_at=video.created_at,
            b_completed_at=video.completed_at,
            b_expires_at=video.expires_at,
            b_first_running_at=record.polled_at if is_running(video.status) else None,
        )
    return row
