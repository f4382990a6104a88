"""Reading for people and tools: tasks, one task's history, the summary counts, exports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, false, func, select, true

from tracker.core.models import Snapshot, Stats, Task
from tracker.errors import UnknownTaskError
from tracker.store.base import SQLStore, aware, counts_by, lease_free
from tracker.store.polls import TASK_COLUMNS
from tracker.store.schema import downloads, outbox, snapshots, tasks

SNAPSHOT_COLUMNS = [snapshots.c[field.name] for field in fields(Snapshot)]
# Snapshots of the last minute are looked for among this many newest rows: bounded work on
# any size of history; enough for 4,000 polls a second.
_RECENT_SNAPSHOTS_SCANNED = 250_000


class Reads(SQLStore):
    def tasks(
        self, status: str | None = None, unfinished: bool = False, limit: int | None = None
    ) -> list[Task]:
        """Registered tasks, oldest first (the first ``limit`` of them)."""
        query = select(*TASK_COLUMNS).order_by(tasks.c.registered_at, tasks.c.task_id)
        if status is not None:
            query = query.where(func.lower(tasks.c.status) == status.lower())
        if unfinished:
            query = query.where(tasks.c.finished == false())
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            return [Task(*row) for row in connection.execute(query)]

    def task(self, task_id: str) -> Task | None:
        with self._engine.connect() as connection:
            query = select(*TASK_COLUMNS).where(tasks.c.task_id == task_id)
            row = connection.execute(query).first()
        return None if row is None else Task(*row)

    def history(self, task_id: str) -> list[Snapshot]:
        """The task's snapshots, oldest first; UnknownTaskError if it is not registered."""
        with self._engine.connect() as connection:
            known = connection.scalar(select(exists().where(tasks.c.task_id == task_id)))
            if not known:
                raise UnknownTaskError(f"unknown task ID {task_id!r}")
            rows = connection.execute(
                select(*SNAPSHOT_COLUMNS)
                .where(snapshots.c.task_id == task_id)
                .order_by(snapshots.c.polled_at, snapshots.c.id)
            )
            return [Snapshot(*row) for row in rows]

    def stats(self, now: datetime) -> Stats:
        """Counts for `tracker stats`, `watch` and the metrics: cheap on any size of history
        (recent snapshots are counted among the newest rows only)."""
        unfinished = tasks.c.finished == false()
        free = lease_free(tasks, now)
        newest = (
            select(snapshots.c.polled_at, snapshots.c.error)
            .order_by(snapshots.c.id.desc())
            .limit(_RECENT_SNAPSHOTS_SCANNED)
            .subquery()
        )
        minute_ago = now - timedelta(minutes=1)
        with self._engine.connect() as connection:
            counts = connection.execute(
                select(
                    func.count().filter(unfinished),
                    func.count().filter(unfinished, tasks.c.next_poll_at <= now, free),
                    func.count().filter(tasks.c.lease_expires_at > now),
                    func.min(tasks.c.registered_at).filter(unfinished),
                    func.coalesce(func.sum(tasks.c.poll_count), 0),
                )
            ).one()
            recent = connection.execute(
                select(func.count(), func.count(newest.c.error)).where(
                    newest.c.polled_at > minute_ago
                )
            ).one()
            return Stats(
                at=now,
                unfinished=counts[0],
                finished=counts_by(connection, tasks.c.finish_reason, tasks.c.finished == true()),
                due=counts[1],
                held=counts[2],
                oldest_unfinished=aware(counts[3]),
                snapshots_last_minute=recent[0],
                errors_last_minute=recent[1],
                polls_total=int(counts[4]),
                downloads=counts_by(connection, downloads.c.state),
                notifications=counts_by(connection, outbox.c.state),
            )

    def export_rows(self, table: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        """Every row of ``tasks`` or ``snapshots`` (those since ``since``: polled since, or for
        tasks registered or polled since), streamed in id or registration order."""
        if table == "tasks":
            query = select(*TASK_COLUMNS).order_by(tasks.c.registered_at, tasks.c.task_id)
            if since is not None:
                query = query.where(
                    (tasks.c.registered_at >= since) | (tasks.c.last_polled_at >= since)
                )
        else:
            query = select(*SNAPSHOT_COLUMNS).order_by(snapshots.c.id)
            if since is not None:
                query = query.where(snapshots.c.polled_at >= since)
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=2000).execute(query)
            for row in result:
                yield dict(row._mapping)
