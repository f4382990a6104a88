"""The report (docs/insights.md): the tasks registered in a window, grouped, counted and timed in
one read of ``tasks`` (never of snapshots).

Durations are whole milliseconds between timestamps cut to the millisecond, the same integers on
both databases (``milliseconds_between``). Their percentiles are nearest-rank
(``tracker.core.report.nearest_rank``), picked from each group's durations (``Group``), which
the query hands over as one text per group: sorting them in the database and streaming them in
order cost three to four times as long (docs/performance.md). A report holds its largest
group's durations while it reads them: some 40 bytes a completed task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, case, false, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from tracker.core.models import FinishReason
from tracker.core.report import COUNTS, Group, GroupKey, ReportQuery, ReportRow, order
from tracker.store.base import SQLStore
from tracker.store.schema import tasks


class milliseconds_between(FunctionElement[int]):
    """``later`` minus ``earlier`` in whole milliseconds, each cut to the millisecond first:
    exact on both databases (SQLite's julianday() holds milliseconds; the difference of two,
    rounded, is exact). NULL when either is."""

    type = BigInteger()
    inherit_cache = True


@compiles(milliseconds_between, "postgresql")
def _postgresql_milliseconds(
    element: milliseconds_between, compiler: SQLCompiler, **kw: Any
) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return (
        f"CAST(EXTRACT(EPOCH FROM date_trunc('milliseconds', {later}) "
        f"- date_trunc('milliseconds', {earlier})) * 1000 AS BIGINT)"
    )


@compiles(milliseconds_between)
def _sqlite_milliseconds(element: milliseconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    # The stored text is 'YYYY-MM-DD HH:MM:SS.ffffff': its first 23 characters are the
    # millisecond, which julianday() reads exactly (it rounds whatever is finer).
    return (
        f"CAST(round((julianday(substr({later}, 1, 23)) - julianday(substr({earlier}, 1, 23)))"
        " * 86400000) AS INTEGER)"
    )


class joined(FunctionElement[str]):
    """An aggregate: the group's non-NULL integers as one comma-separated text (NULL for
    none), in no order."""

    type = Text()
    inherit_cache = True


@compiles(joined, "postgresql")
def _postgresql_joined(element: joined, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg(CAST({compiler.process(element.clauses, **kw)} AS TEXT), ',')"


@compiles(joined)
def _sqlite_joined(element: joined, compiler: SQLCompiler, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)})"


class _UTCText(FunctionElement[str]):
    """A timestamp column as UTC text cut to a day or an hour, the same on both databases."""

    type = Text()
    inherit_cache = True
    length = 0  # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff': the text's first characters
    pattern = ""  # PostgreSQL's to_char pattern for the same text


class utc_day(_UTCText):
    """``2026-12-06``"""

    inherit_cache = True
    length, pattern = 10, "YYYY-MM-DD"


class utc_hour(_UTCText):
    """``2026-12-06 13``"""

    inherit_cache = True
    length, pattern = 13, "YYYY-MM-DD HH24"


@compiles(utc_day, "postgresql")
@compiles(utc_hour, "postgresql")
def _postgresql_utc_text(element: _UTCText, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column}) AT TIME ZONE 'UTC', '{element.pattern}')"


@compiles(utc_day)
@compiles(utc_hour)
def _sqlite_utc_text(element: _UTCText, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, {element.length})"


def hour_text(text: str) -> str:
    """``2026-12-06 13`` (utc_hour) as ISO 8601: ``2026-12-06T13:00:00Z``."""
    return f"{text[:10]}T{text[11:13]}:00:00Z"


def hour_start(text: str) -> datetime:
    return datetime.fromisoformat(hour_text(text))


KEY_COLUMNS: dict[GroupKey, ColumnElement[Any]] = {
    GroupKey.MODEL: tasks.c.model,
    GroupKey.SIZE: tasks.c.size,
    GroupKey.SECONDS: tasks.c.seconds,
    GroupKey.PROVIDER: tasks.c.provider,
    GroupKey.LABEL: tasks.c.label,
    GroupKey.DAY: utc_day(tasks.c.registered_at),
    GroupKey.HOUR: utc_hour(tasks.c.registered_at),
}
#: Where a task's durations start: the API's created_at when known, else its registration.
STARTED = func.coalesce(tasks.c.created_at, tasks.c.registered_at)
COMPLETED_AT = case((tasks.c.finish_reason == FinishReason.COMPLETED.value, tasks.c.finished_at))
#: How long each completed task took, from its start to the poll that saw it complete.
TOOK = milliseconds_between(COMPLETED_AT, STARTED)
#: How long each task waited, from its start to the first poll that saw it running.
QUEUED = milliseconds_between(tasks.c.first_running_at, STARTED)


def in_window(query: ReportQuery) -> list[ColumnElement[bool]]:
    """The tasks registered in the query's window (read through the registration index)."""
    conditions = [tasks.c.registered_at >= query.since]
    if query.until is not None:
        conditions.append(tasks.c.registered_at < query.until)
    return conditions


class Reports(SQLStore):
    def report(self, query: ReportQuery) -> list[ReportRow]:
        """One row per group of the tasks registered in the window, in the report's order;
        none when no task was registered in it. Each group's durations are let go once its row
        is made."""
        rows = [group.row() for group in self._groups(query)]
        return sorted(rows, key=lambda row: order(row.keys))

    def groups(self, query: ReportQuery) -> list[Group]:
        """The groups themselves, durations and all, in the report's order: for adding up
        (``rollup``) into several reports from one read."""
        return sorted(self._groups(query), key=lambda group: order(group.keys))

    def _groups(self, query: ReportQuery) -> Iterator[Group]:
        # Each task's figures first, in a subquery the database keeps apart (OFFSET 0): what it
        # then sorts to group is a few numbers a task rather than every column they come from
        # (a third less time on SQLite; docs/performance.md).
        each = (
            select(
                *(KEY_COLUMNS[key].label(key.value) for key in query.by),
                tasks.c.finished,
                tasks.c.finish_reason,
                tasks.c.poll_count,
                TOOK.label("took"),
                QUEUED.label("queued"),
            )
            .where(*in_window(query))
            .offset(0)
            .subquery()
        )
        keys = [each.c[key.value] for key in query.by]
        ended = [func.count().filter(each.c.finish_reason == end.value) for end in FinishReason]
        statement = (
            select(
                *keys,
                func.count(),
                func.count().filter(each.c.finished == false()),
                *ended,
                func.coalesce(func.sum(each.c.poll_count), 0),
                joined(each.c.took),
                joined(each.c.queued),
            )
            .group_by(*keys)
            # Without keys, an empty window is still one group: no task, no row.
            .having(func.count() > 0)
        )
        with self._engine.connect() as connection:
            for row in connection.execute(statement):
                yield _group(query.by, row)


def _group(by: Sequence[GroupKey], row: Sequence[Any]) -> Group:
    keys = {key.value: _key_text(key, value) for key, value in zip(by, row, strict=False)}
    *counts, polls, took, queued = row[len(by) :]
    return Group(
        keys,
        **dict(zip(COUNTS, counts, strict=True)),
        polls=int(polls),
        took=_durations(took),
        queued=_durations(queued),
    )


def _durations(joined_text: str | None) -> list[int]:
    """The milliseconds ``joined`` gave."""
    return json.loads(f"[{joined_text}]") if joined_text else []


def _key_text(key: GroupKey, value: Any) -> str | None:
    if value is None:
        return None
    return hour_text(value) if key is GroupKey.HOUR else str(value)
