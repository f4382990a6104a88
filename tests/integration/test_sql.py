"""`tracker sql` on a real SQLite file and a real PostgreSQL database, through Tracker.sql: one
read-only statement runs; a write or several statements are refused (QueryRefusedError); a
mistake in the query is an error of the query (QueryError); the same on both databases."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracker import QueryError, QueryRefusedError, QueryTimeoutError, Tracker
from tracker.store.statements import statements

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
WRITES = "this one writes"
SEVERAL = "refused: tracker sql runs exactly one statement"


@pytest.fixture
def tracker(database_url: str) -> Iterator[Tracker]:
    with Tracker(database_url) as tracker:
        tracker.add(["keep-me"], label="label")
        yield tracker


def assert_unchanged(tracker: Tracker, tmp_path: Path) -> None:
    assert [(task.task_id, task.label) for task in tracker.tasks()] == [("keep-me", "label")]
    assert tracker.sql("SELECT COUNT(*) FROM snapshots").rows == [(0,)]
    assert not (tmp_path / "evil.db").exists()


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("DELETE FROM tasks", "this one is DELETE"),
        ("UPDATE tasks SET label = 'x'", "this one is UPDATE"),
        ("DROP TABLE snapshots", "this one is DROP"),
        ("CREATE TABLE evil (x int)", "this one is CREATE"),
        ("BEGIN", "this one is BEGIN"),
        ("COMMIT", "this one is COMMIT"),
        ("-- a comment first\n/* and another */ DELETE FROM tasks;", "this one is DELETE"),
        ("SELECT 1; SELECT 2", SEVERAL),
        ("SELECT 1; DELETE FROM tasks", SEVERAL),
        ("SELECT 1) AS x; DELETE FROM tasks; SELECT (1", SEVERAL),
        ("SELECT 1;\n;\nSELECT ';' AS x", SEVERAL),
    ],
)
def test_writes_and_several_statements_are_refused(
    tracker: Tracker, tmp_path: Path, query: str, says: str
) -> None:
    """A statement that is not a read, or more than one statement, is refused (saying which
    rule it broke) before anything runs, and changes nothing: the same on both databases."""
    with pytest.raises(QueryRefusedError) as refused:
        tracker.sql(query)
    message = str(refused.value)
    assert message.startswith("refused: tracker sql runs ")
    assert says in message
    if says != SEVERAL:
        assert message.startswith(
            "refused: tracker sql runs one read-only statement (SELECT, WITH, VALUES, TABLE); "
        )
    assert_unchanged(tracker, tmp_path)


@pytest.mark.parametrize(
    ("query", "sqlite", "postgresql"),
    [
        (
            "SELECT * FROM nope",
            "error in the query: no such table: nope",
            'error in the query: relation "nope" does not exist',
        ),
        (
            "SELEC 1",
            'error in the query: near "SELEC": syntax error',
            'error in the query: syntax error at or near "SELEC"',
        ),
        (
            "SELECT nope FROM tasks",
            "error in the query: no such column: nope",
            'error in the query: column "nope" does not exist',
        ),
        (
            "INSERT INTO nope VALUES (1)",
            "error in the query: no such table: nope",
            'error in the query: relation "nope" does not exist',
        ),
        ("  ;  -- nothing\n", "error in the query: it is empty", "error in the query: it is empty"),
    ],
)
def test_a_mistake_in_the_query_is_told_from_a_refusal(
    tracker: Tracker, database_url: str, query: str, sqlite: str, postgresql: str
) -> None:
    """An unknown table, bad syntax or an empty query is a QueryError carrying the database's
    own first line, never a refusal: neither says the other's message."""
    with pytest.raises(QueryError) as raised:
        tracker.sql(query)
    assert not isinstance(raised.value, QueryRefusedError)
    assert str(raised.value) == (sqlite if database_url.startswith("sqlite") else postgresql)


RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"


def test_a_query_past_its_timeout_is_stopped(tracker: Tracker) -> None:
    """A query that would run for ever stops at its timeout, with QueryTimeoutError naming
    it (not a mistake in the query), on both databases; the next query runs as usual."""
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError) as stopped:
        tracker.sql(RUNAWAY, timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    assert not isinstance(stopped.value, QueryError)
    assert str(stopped.value).startswith("stopped: the query ran past its timeout of 0.5s")
    assert tracker.sql("SELECT COUNT(*) FROM tasks", timeout=0.5).rows == [(1,)]


def test_sqlite_refuses_what_its_authorizer_denies(sqlite_url: str, tmp_path: Path) -> None:
    """On SQLite, ATTACH, PRAGMA and VACUUM are refused, and a refused PRAGMA write really
    changed nothing."""
    with Tracker(sqlite_url) as tracker:
        tracker.add(["keep-me"], label="label")
        for query in (
            f"ATTACH DATABASE '{tmp_path}/evil.db' AS evil",
            "PRAGMA journal_mode = DELETE",
            "VACUUM",
        ):
            with pytest.raises(QueryRefusedError, match="read-only statement"):
                tracker.sql(query)
        assert_unchanged(tracker, tmp_path)
    path = sqlite_url.removeprefix("sqlite:///")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_postgresql_refuses_a_read_that_writes(postgres_url: str, tmp_path: Path) -> None:
    """On PostgreSQL a SELECT or WITH that would write (a data-modifying WITH, a row lock,
    SELECT INTO) is stopped by the read-only transaction and refused as a write."""
    with Tracker(postgres_url) as tracker:
        tracker.add(["keep-me"], label="label")
        for query in (
            "WITH gone AS (DELETE FROM tasks RETURNING task_id) SELECT * FROM gone",
            "SELECT * FROM tasks FOR UPDATE",
            "SELECT task_id INTO evil FROM tasks",
        ):
            with pytest.raises(QueryRefusedError, match=WRITES):
                tracker.sql(query)
        assert_unchanged(tracker, tmp_path)
        with pytest.raises(QueryError):
            tracker.sql("SELECT * FROM evil")


def test_reads_run_with_joins_ctes_comments_and_semicolons_in_strings(tracker: Tracker) -> None:
    """Ordinary queries work: WITH, joins, aggregates, comments, a trailing semicolon, and
    semicolons inside strings, quoted names and comments."""
    result = tracker.sql(
        "-- how many? one; or more\nWITH t AS (SELECT task_id FROM tasks) "
        "SELECT COUNT(*) AS n, MIN(t.task_id) AS \"first;\", ';' AS semicolon /* ; */ FROM t "
        "LEFT JOIN snapshots s ON s.task_id = t.task_id;  -- done;"
    )
    assert result.columns == ["n", "first;", "semicolon"]
    assert result.rows == [(1, "keep-me", ";")]
    assert tracker.sql("VALUES (1)").rows == [(1,)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';'; SELECT '''; still a string'", ["SELECT ';'", "SELECT '''; still a string'"]),
        (
            'SELECT "a;b" FROM t; SELECT 2 -- c;\n; SELECT 3',
            ['SELECT "a;b" FROM t', "SELECT 2 -- c;", "SELECT 3"],
        ),
        ("SELECT 1 /* a; b */; /* only a comment; */", ["SELECT 1 /* a; b */"]),
        ("SELECT [a;b], `c;d` FROM t; SELECT 2", ["SELECT [a;b], `c;d` FROM t", "SELECT 2"]),
        ("SELECT 'unterminated; SELECT 2", ["SELECT 'unterminated; SELECT 2"]),
    ],
)
def test_sqlite_statements_end_where_sqlite_says(sql: str, expected: list[str]) -> None:
    """On SQLite a statement ends where SQLite's own tokenizer says it is complete
    (sqlite3.complete_statement), and nowhere before; pieces holding only comments are none."""
    found = [statement.text for statement in statements(sql, "sqlite")]
    assert found == expected
    for text in found[:-1]:
        assert sqlite3.complete_statement(text + "\n;")
        inner = [i for i, char in enumerate(text) if char == ";"]
        assert not any(sqlite3.complete_statement(text[: i + 1]) for i in inner)


def test_postgresql_quotes_are_read_as_postgresql_reads_them() -> None:
    """Dollar quotes, E'' strings with backslashes and nested comments hide their semicolons;
    $1 is a parameter, not a quote."""
    assert len(statements("SELECT $$a;b$$, $tag$;$tag$", "postgresql")) == 1
    assert len(statements("SELECT E'it\\'s; fine'", "postgresql")) == 1
    assert len(statements("/* outer /* inner; */ still; */ SELECT 1", "postgresql")) == 1
    assert len(statements("SELECT $1; SELECT 2", "postgresql")) == 2
    assert [s.keyword for s in statements("((SELECT 1)); (VALUES (2))", "postgresql")] == [
        "select",
        "values",
    ]
