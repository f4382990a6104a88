"""``tracker sql``: one read-only statement, on SQLite through an authorizer that denies
anything but reading, on PostgreSQL inside a read-only transaction that is rolled back."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any, cast

from tracker.errors import DatabaseError, QueryRefusedError
from tracker.store.base import SQLStore

# What a read-only statement starts with, after comments and opening parentheses.
_READS = re.compile(r"(\s+|--[^\n]*(\n|$)|/\*.*?\*/|\()*(select|with|values|table)\b", re.I | re.S)
READ_ONLY_TIMEOUT_SECONDS = 60
_READ_ONLY_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class ReadOnlySQL(SQLStore):
    def run_read_only(self, query: str) -> QueryResult:
        """Run one read-only statement; refuse writes, several statements and bad SQL."""
        if not query.strip().rstrip(";").strip():
            raise QueryRefusedError("refused: the query is empty")
        if not _READS.match(query):
            raise QueryRefusedError(_refusal("not authorized"))
        raw = self._engine.raw_connection()
        try:
            if self._dialect == "sqlite":
                return _sqlite_read_only(cast(sqlite3.Connection, raw.driver_connection), query)
            return _postgresql_read_only(raw.driver_connection, query)
        finally:
            # The connection was changed for this query: close it rather than pool it.
            raw.invalidate()


def _sqlite_read_only(connection: sqlite3.Connection, query: str) -> QueryResult:
    connection.set_authorizer(_read_only_authorizer)
    cursor = connection.cursor()
    try:
        cursor.execute(query)
        columns = [column[0] for column in cursor.description or ()]
        return QueryResult(columns=columns, rows=[tuple(row) for row in cursor.fetchall()])
    except (sqlite3.DatabaseError, sqlite3.ProgrammingError, sqlite3.Warning) as exc:
        raise QueryRefusedError(_refusal(str(exc))) from None
    finally:
        cursor.close()


def _postgresql_read_only(connection: Any, query: str) -> QueryResult:
    """A read-only transaction, rolled back, with a statement timeout. The query runs as a
    subquery of a prepared statement, and PostgreSQL refuses several commands in one of those:
    neither a second statement nor a COMMIT can slip in."""
    import psycopg

    statement = "SELECT * FROM (\n" + re.sub(r"[\s;]+$", "", query) + "\n) AS tracker_sql"
    try:
        connection.read_only = True
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = '{READ_ONLY_TIMEOUT_SECONDS}s'")
            cursor.execute(statement, prepare=True)
            columns = [column.name for column in cursor.description or ()]
            rows = [tuple(row) for row in cursor.fetchall()]
        connection.rollback()
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"the database failed: {str(exc).strip()}") from exc
    except psycopg.Error as exc:
        raise QueryRefusedError(_refusal(str(exc))) from None
    return QueryResult(columns=columns, rows=rows)


def _read_only_authorizer(action: int, *_args: object) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ONLY_ACTIONS else sqlite3.SQLITE_DENY


def _refusal(message: str) -> str:
    message = message.strip().splitlines()[0] if message.strip() else "invalid query"
    if "not authorized" in message or "read-only transaction" in message:
        return "refused: tracker sql runs read-only statements (SELECT, WITH) only"
    if "one statement at a time" in message or "multiple commands" in message:
        return "refused: tracker sql runs exactly one statement"
    return f"refused: {message}"
