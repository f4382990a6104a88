"""``tracker sql``: one read-only statement, on SQLite through an authorizer that denies
anything but reading, on PostgreSQL inside a read-only transaction that is rolled back; stopped
at its timeout (SQLite's progress handler, PostgreSQL's statement_timeout) or by Ctrl-C.

A refusal (QueryRefusedError: a write, several statements) is told from a mistake in the query
(QueryError: bad syntax, an unknown table) by what happened, never by the wording of a message:
the statements are counted before anything is sent; a statement that is not a read form is only
parsed, never run, and refused if it parses; a read that writes is refused by the database (the
authorizer's denial, PostgreSQL's read-only transaction)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, cast

from tracker.errors import DatabaseError, QueryError, QueryRefusedError, QueryTimeoutError
from tracker.store.base import SQLStore
from tracker.store.statements import Statement, statements

READ_FORMS = ("select", "with", "values", "table")
DEFAULT_TIMEOUT_SECONDS = 60.0
# SQLite virtual machine instructions between two looks at the clock (and at Ctrl-C): well
# under a millisecond of work.
_PROGRESS_STEPS = 10_000
READ_ONLY = "refused: tracker sql runs one read-only statement (SELECT, WITH, VALUES, TABLE)"
WRITES = f"{READ_ONLY}; this one writes"
SEVERAL = "refused: tracker sql runs exactly one statement"
_READ_ONLY_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class ReadOnlySQL(SQLStore):
    def run_read_only(self, query: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> QueryResult:
        """Run one read-only statement, for ``timeout`` seconds at most. QueryRefusedError for a
        write or several statements, QueryError for a mistake in the query, QueryTimeoutError
        past the timeout; Ctrl-C stops it at once (KeyboardInterrupt)."""
        found = statements(query, self._dialect)
        if not found:
            raise QueryError("error in the query: it is empty")
        if len(found) > 1:
            raise QueryRefusedError(SEVERAL)
        raw = self._engine.raw_connection()
        try:
            if self._dialect == "sqlite":
                connection = cast(sqlite3.Connection, raw.driver_connection)
                return _sqlite_read_only(connection, found[0], timeout)
            return _postgresql_read_only(raw.driver_connection, found[0], timeout)
        finally:
            # The connection was changed for this query: close it rather than pool it.
            raw.invalidate()


def _sqlite_read_only(
    connection: sqlite3.Connection, statement: Statement, timeout: float
) -> QueryResult:
    """A read form runs with only reading allowed; any other statement with nothing allowed,
    so that it stops at its first action (nothing runs) or at its syntax. The progress handler
    stops it at the deadline; it is also where Python sees Ctrl-C while SQLite works."""
    reads = statement.keyword in READ_FORMS
    denied: list[int] = []
    deadline = time.monotonic() + timeout
    expired = False

    def authorizer(action: int, *_args: object) -> int:
        if reads and action in _READ_ONLY_ACTIONS:
            return sqlite3.SQLITE_OK
        denied.append(action)
        return sqlite3.SQLITE_DENY

    def progress() -> bool:
        nonlocal expired
        expired = time.monotonic() >= deadline
        return expired  # true stops the query

    connection.set_authorizer(authorizer)
    connection.set_progress_handler(progress, _PROGRESS_STEPS)
    cursor = connection.cursor()
    try:
        cursor.execute(statement.text)
        if not reads:
            raise QueryRefusedError(_not_a_read(statement))  # it asked for nothing
        columns = [column[0] for column in cursor.description or ()]
        return QueryResult(columns=columns, rows=[tuple(row) for row in cursor.fetchall()])
    except sqlite3.Error as exc:
        if denied:
            raise QueryRefusedError(WRITES if reads else _not_a_read(statement)) from None
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
            if expired:
                raise QueryTimeoutError(timeout) from None
            # Ctrl-C: its KeyboardInterrupt was raised in the progress handler, where sqlite3
            # swallows it and stops the query.
            raise KeyboardInterrupt from None
        raise QueryError(_mistake(exc)) from None
    finally:
        cursor.close()


def _postgresql_read_only(connection: Any, statement: Statement, timeout: float) -> QueryResult:
    """A read form runs in a read-only transaction, rolled back, with a statement timeout, as
    a prepared statement (which PostgreSQL refuses to hold several commands); any other
    statement is only parsed. psycopg cancels the query on Ctrl-C itself."""
    import psycopg

    started = time.monotonic()
    try:
        connection.read_only = True
        with connection.cursor() as cursor:
            milliseconds = max(1, round(timeout * 1000))
            cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
            if statement.keyword not in READ_FORMS:
                _parse_only(connection, statement.text)
                raise QueryRefusedError(_not_a_read(statement))
            cursor.execute(statement.text, prepare=True)
            columns = [column.name for column in cursor.description or ()]
            rows = [tuple(row) for row in cursor.fetchall()]
        connection.rollback()
    except psycopg.errors.ReadOnlySqlTransaction:
        raise QueryRefusedError(WRITES) from None
    except psycopg.errors.QueryCanceled as exc:
        if time.monotonic() - started >= timeout:
            raise QueryTimeoutError(timeout) from None
        # Cancelled before its time: by someone on the server (Ctrl-C is a KeyboardInterrupt).
        raise DatabaseError(f"the database failed: {str(exc).strip()}") from exc
    except psycopg.Error as exc:
        if connection.broken:  # the server or the connection failed, not the query
            raise DatabaseError(f"the database failed: {str(exc).strip()}") from exc
        raise QueryError(_mistake(exc)) from None
    return QueryResult(columns=columns, rows=rows)


def _parse_only(connection: Any, text: str) -> None:
    """Have the server parse ``text`` (the extended protocol's Parse) without running it;
    QueryError if it cannot."""
    from psycopg import pq

    result = connection.pgconn.prepare(b"tracker_sql_parsed", text.encode())
    if result.status == pq.ExecStatus.FATAL_ERROR:
        message = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b""
        raise QueryError(_mistake(message.decode(errors="replace")))


def _not_a_read(statement: Statement) -> str:
    if not statement.keyword:
        return WRITES
    return f"{READ_ONLY}; this one is {statement.keyword.upper()}"


def _mistake(error: Exception | str) -> str:
    """The driver's first line, as the mistake it names."""
    text = str(error).strip()
    return f"error in the query: {text.splitlines()[0] if text else 'invalid query'}"
