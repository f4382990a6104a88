"""Reading for people and tools: tasks, one task's history, the summary counts, exports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, exists, false, func, select, true, tuple_
from sqlalchemy.engine import Connection

from tracker.core.exports import ExportTable
from tracker.core.models import (
    NEWEST_FIRST,
    Gauges,
    Position,
    Snapshot,
    SortKey,
    Stats,
    Task,
    TaskFilter,
    TaskOrder,
)
from tracker.core.pauses import Pause
from tracker.errors import UnknownTaskError
from tracker.store import ordering
from tracker.store.base import SQLStore, aware, counts_by, lease_free
from tracker.store.ordering import literal_tuple
from tracker.store.polls import PAUSE_COLUMNS, TASK_COLUMNS, pause_of
from tracker.store.schema import PENDING, downloads, outbox, pauses, snapshots, tasks
from tracker.store.tallies import tallied as tallied_counts

SNAPSHOT_COLUMNS = [snapshots.c[field.name] for field in fields(Snapshot)]
# A prefix matching more tasks than this is broad: on SQLite its page is found sooner by walking
# the registrations newest first than by sorting every match.
_BROAD_PREFIX = 5000
# Snapshots of the last minute are looked for among this many newest rows: bounded work on
# any size of history; enough for 4,000 polls a second.
_RECENT_SNAPSHOTS_SCANNED = 250_000
# The backlog due now is counted up to this: a bigger one reads this (docs/operating.md).
DUE_COUNTED_UP_TO = 10_000
EVERY_TASK = TaskFilter()


class Reads(SQLStore):
    def tasks(
        self, status: str | None = None, unfinished: bool = False, limit: int | None = None
    ) -> list[Task]:
        """Registered tasks, oldest first (the first ``limit`` of them)."""
        query = select(*TASK_COLUMNS).order_by(tasks.c.registered_at, tasks.c.task_id)
        query = query.where(
            *task_conditions(TaskFilter(status, False if unfinished else None), self._dialect)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            return [Task(*row) for row in connection.execute(query)]

    def page(
        self,
        which: TaskFilter,
        limit: int,
        after: Position | None = None,
        order: TaskOrder = NEWEST_FIRST,
    ) -> list[Task]:
        """Up to ``limit`` tasks in ``order`` (newest first), after ``after`` (a page's last
        task): each page reads only its own rows through an index in that order, however deep
        it is (store/ordering.py)."""
        walk = order.key is SortKey.REGISTERED_AT and self.walks(which)
        conditions = task_conditions(which, self._dialect, walk_registrations=walk)
        page: list[Task] = []
        valued = ordering.valued_after(after, order)
        with self._engine.connect() as connection:
            if valued is not None:
                query = (
                    select(*TASK_COLUMNS)
                    .where(*conditions, *valued)
                    .order_by(*ordering.valued_order(order))
                    .limit(limit)
                )
                page = [Task(*row) for row in connection.execute(query)]
            if len(page) < limit and order.key is not SortKey.REGISTERED_AT:
                query = (
                    select(*TASK_COLUMNS)
                    .where(*conditions, *ordering.unvalued_after(after, order))
                    .order_by(*ordering.unvalued_order(order))
                    .limit(limit - len(page))
                )
                page += [Task(*row) for row in connection.execute(query)]
        return page

    def walks(self, which: TaskFilter) -> bool:
        """Whether tasks ``which`` selects are found sooner, newest first, by walking the
        registrations than by their key: on SQLite, a prefix alone that matches many tasks,
        whose planner reads any prefix by the key and sorts the matches, a million of them for
        ``video_``."""
        if (
            self._dialect != "sqlite"
            or not which.prefix
            or which != TaskFilter(prefix=which.prefix)
        ):
            return False
        some = select(tasks.c.task_id).where(*task_conditions(which, self._dialect))
        query = select(func.count()).select_from(some.limit(_BROAD_PREFIX).subquery())
        with self._engine.connect() as connection:
            return int(connection.scalar(query) or 0) >= _BROAD_PREFIX

    def count(
        self, which: TaskFilter, after: Position | None = None, up_to: int | None = None
    ) -> int:
        """How many tasks ``which`` selects (those after ``after``, newest first); no more than
        ``up_to`` if given, which bounds the work however many there are."""
        conditions = task_conditions(which, self._dialect)
        conditions += ordering.registered_after(after, NEWEST_FIRST)
        query = select(func.count()).select_from(tasks).where(*conditions)
        if up_to is not None:
            some = select(tasks.c.task_id).where(*conditions).limit(up_to)
            query = select(func.count()).select_from(some.subquery())
        with self._engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def stream(
        self, which: TaskFilter, batch: int = 1000, after: Position | None = None
    ) -> Iterator[Task]:
        """Every task ``which`` selects, newest first (after ``after``), a page at a time:
        memory stays flat and no read holds the database for long, however many there are."""
        while True:
            page = self.page(which, batch, after)
            yield from page
            if len(page) < batch:
                return
            after = Position(page[-1].registered_at, page[-1].task_id)

    def task(self, task_id: str) -> Task | None:
        with self._engine.connect() as connection:
            query = select(*TASK_COLUMNS).where(tasks.c.task_id == task_id)
            row = connection.execute(query).first()
        return None if row is None else Task(*row)

    def history(self, task_id: str) -> list[Snapshot]:
        """The task's snapshots, oldest first; UnknownTaskError if it is not registered."""
        return list(self.stream_history(task_id))

    def stream_history(
        self,
        task_id: str,
        *,
        first: int | None = None,
        last: int | None = None,
        batch: int = 1000,
    ) -> Iterator[Snapshot]:
        """The task's snapshots, oldest first (only the ``first`` or the ``last`` N), a page at
        a time: memory stays flat, and no read holds the database (on SQLite, the WAL
        checkpoint) while the reader is slow. UnknownTaskError if it is not registered."""
        in_order = (snapshots.c.polled_at, snapshots.c.id)
        with self._engine.connect() as connection:
            known = connection.scalar(select(exists().where(tasks.c.task_id == task_id)))
            if not known:
                raise UnknownTaskError(f"unknown task ID {task_id!r}")
            start: ColumnElement[bool] | None = None
            if last == 0:
                return
            if last is not None:
                # Where the last N begin: N entries back along the task's history index.
                boundary = connection.execute(
                    select(*in_order)
                    .where(snapshots.c.task_id == task_id)
                    .order_by(*(column.desc() for column in in_order))
                    .offset(last - 1)
                    .limit(1)
                ).first()
                if boundary is not None:
                    start = tuple_(*in_order) >= literal_tuple(in_order, boundary)
        remaining = first
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            query = (
                select(*SNAPSHOT_COLUMNS)
                .where(snapshots.c.task_id == task_id)
                .order_by(*in_order)
                .limit(size)
            )
            if start is not None:
                query = query.where(start)
            with self._engine.connect() as connection:
                page = [Snapshot(*row) for row in connection.execute(query)]
            yield from page
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            start = tuple_(*in_order) > literal_tuple(in_order, (page[-1].polled_at, page[-1].id))

    def snapshots_page(
        self, task_id: str, limit: int, after_id: int | None = None
    ) -> list[Snapshot]:
        """Up to ``limit`` of the task's snapshots, oldest first, after the one ``after_id``
        (one task is never polled twice at once, so its ids follow its polls)."""
        query = (
            select(*SNAPSHOT_COLUMNS)
            .where(snapshots.c.task_id == task_id)
            .order_by(snapshots.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(snapshots.c.id > after_id)
        with self._engine.connect() as connection:
            return [Snapshot(*row) for row in connection.execute(query)]

    def gauges(self, now: datetime) -> Gauges:
        """What the metrics show, each in bounded time at any size (docs/operating.md)."""
        with self._engine.connect() as connection:
            return _gauges(connection, now)

    def stats(self, now: datetime) -> Stats:
        """Counts for `tracker stats` and `watch`: the gauges, what is held and the polls in
        all (a look at every task), and the last minute's snapshots (among the newest rows
        only)."""
        newest = (
            select(snapshots.c.polled_at, snapshots.c.error)
            .order_by(snapshots.c.id.desc())
            .limit(_RECENT_SNAPSHOTS_SCANNED)
            .subquery()
        )
        minute_ago = now - timedelta(minutes=1)
        with self._engine.connect() as connection:
            gauges = _gauges(connection, now)
            held, polls = connection.execute(
                select(
                    func.count().filter(tasks.c.lease_expires_at > now),
                    func.coalesce(func.sum(tasks.c.poll_count), 0),
                )
            ).one()
            recent = connection.execute(
                select(func.count(), func.count(newest.c.error)).where(
                    newest.c.polled_at > minute_ago
                )
            ).one()
        return Stats(
            **{field.name: getattr(gauges, field.name) for field in fields(Gauges)},
            held=held,
            snapshots_last_minute=recent[0],
            errors_last_minute=recent[1],
            polls_total=int(polls),
        )

    def pauses(self, now: datetime) -> list[Pause]:
        """The pauses in force at ``now``, by provider, each with the number of unfinished
        tasks of its provider (``waiting``: none of them is polled before it ends)."""
        with self._engine.connect() as connection:
            return _pauses(connection, now)

    def export_rows(
        self,
        table: ExportTable,
        since: datetime | None = None,
        which: TaskFilter = EVERY_TASK,
        batch: int = 2000,
    ) -> Iterator[dict[str, Any]]:
        """Every row of ``tasks`` or ``snapshots`` (those since ``since``: polled since, or
        for tasks registered or polled since; of the tasks ``which`` selects), in registration
        or id order, a page at a time: memory stays flat, and no read holds the database (on
        SQLite, the WAL checkpoint) while the reader is slow."""
        if table == "tasks":
            return self._export_tasks(since, which, batch)
        return self._export_snapshots(since, which, batch)

    def _export_tasks(
        self, since: datetime | None, which: TaskFilter, batch: int
    ) -> Iterator[dict[str, Any]]:
        oldest_first = TaskOrder(descending=False)
        conditions = task_conditions(which, self._dialect)
        if since is not None:
            conditions.append((tasks.c.registered_at >= since) | (tasks.c.last_polled_at >= since))
        last: Position | None = None
        while True:
            query = (
                select(*TASK_COLUMNS)
                .where(*conditions, *ordering.registered_after(last, oldest_first))
                .order_by(*ordering.valued_order(oldest_first))
                .limit(batch)
            )
            with self._engine.connect() as connection:
                page = [dict(row._mapping) for row in connection.execute(query)]
            yield from page
            if len(page) < batch:
                return
            last = Position(page[-1]["registered_at"], page[-1]["task_id"])

    def _export_snapshots(
        self, since: datetime | None, which: TaskFilter, batch: int
    ) -> Iterator[dict[str, Any]]:
        conditions: list[ColumnElement[bool]] = []
        if since is not None:
            conditions.append(snapshots.c.polled_at >= since)
        if which != EVERY_TASK:
            chosen = select(tasks.c.task_id).where(*task_conditions(which, self._dialect))
            conditions.append(snapshots.c.task_id.in_(chosen))
        last_id: int | None = None
        while True:
            query = select(*SNAPSHOT_COLUMNS).where(*conditions).order_by(snapshots.c.id)
            if last_id is not None:
                query = query.where(snapshots.c.id > last_id)
            with self._engine.connect() as connection:
                page = [dict(row._mapping) for row in connection.execute(query.limit(batch))]
            yield from page
            if len(page) < batch:
                return
            last_id = page[-1]["id"]


def _gauges(connection: Connection, now: datetime) -> Gauges:
    unfinished = tasks.c.finished == false()
    # By the index of unfinished tasks by provider: the finished ones are never read.
    by_provider = counts_by(connection, tasks.c.provider, unfinished)
    due = (
        select(tasks.c.task_id)
        .where(unfinished, tasks.c.next_poll_at <= now, lease_free(tasks, now))
        .limit(DUE_COUNTED_UP_TO)
        .subquery()
    )
    tallied = tallied_counts(connection)
    return Gauges(
        at=now,
        unfinished=sum(by_provider.values()),
        finished=tallied["finished"],
        due=int(connection.scalar(select(func.count()).select_from(due)) or 0),
        oldest_unfinished=aware(
            connection.scalar(select(func.min(tasks.c.registered_at)).where(unfinished))
        ),
        downloads=_with_pending(connection, downloads, tallied["downloads"]),
        notifications=_with_pending(connection, outbox, tallied["notifications"]),
        paused=_pauses(connection, now),
        unfinished_by_provider=by_provider,
    )


def _with_pending(connection: Connection, table: Table, settled: dict[str, int]) -> dict[str, int]:
    """The settled counts, and the pending rows counted by their partial index."""
    pending = connection.scalar(select(func.count()).where(table.c.state == PENDING))
    return {**settled, "pending": int(pending)} if pending else settled


def _pauses(connection: Connection, now: datetime) -> list[Pause]:
    waiting = (
        select(func.count())
        .where(tasks.c.finished == false(), tasks.c.provider == pauses.c.provider)
        .scalar_subquery()
    )
    query = (
        select(*PAUSE_COLUMNS, waiting)
        .where(pauses.c.paused_until > now)
        .order_by(pauses.c.provider)
    )
    return [pause_of(row) for row in connection.execute(query)]


def task_conditions(
    which: TaskFilter, dialect: str, walk_registrations: bool = False
) -> list[ColumnElement[bool]]:
    """``walk_registrations`` hides the key from SQLite's planner (an expression on it is no
    range on the index), so that it walks the registration index instead."""
    conditions: list[ColumnElement[bool]] = []
    if which.status is not None:
        conditions.append(func.lower(tasks.c.status) == which.status.lower())
    if which.finished is not None:
        conditions.append(tasks.c.finished == (true() if which.finished else false()))
    if which.label is not None:
        conditions.append(tasks.c.label == which.label)
    if which.provider is not None:
        conditions.append(tasks.c.provider == which.provider)
    if which.finish_reason is not None:
        conditions.append(tasks.c.finish_reason == which.finish_reason)
    if which.error:
        # Any case, anywhere in the text: read on every task the rest of the filter selects.
        conditions.append(tasks.c.last_error.icontains(which.error, autoescape=True))
    if which.prefix and dialect == "sqlite":
        # SQLite's LIKE ignores case and every index; a range on the key (its BINARY order)
        # keeps the case and reads the index. Task IDs are printable ASCII, all below DEL.
        key = tasks.c.task_id.concat("") if walk_registrations else tasks.c.task_id
        conditions.append(key >= which.prefix)
        conditions.append(key < which.prefix + "\x7f")
    elif which.prefix:
        # PostgreSQL compares text by the database's collation, where a range is no prefix.
        conditions.append(tasks.c.task_id.startswith(which.prefix, autoescape=True))
    return conditions
