"""All of tracker's SQL: registering tasks, claiming due ones, writing what polls saw, reading.

The poller only sees the ``Repository`` protocol; ``SQLRepository`` implements it on SQLite and
PostgreSQL, ``tracker.testing.InMemoryRepository`` in memory for unit tests. Methods are
synchronous; the poller calls them from a worker thread, never on the event loop.
"""

from __future__ import annotations

import copy
import operator
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import (
    Dialect,
    Engine,
    Table,
    bindparam,
    delete,
    exists,
    false,
    func,
    literal_column,
    null,
    select,
    true,
    tuple_,
    union,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.expression import ColumnElement

from tracker.core.models import (
    AddResult,
    ClaimedTask,
    Download,
    DownloadJob,
    DownloadOutcome,
    EventJob,
    EventOutcome,
    FetchResult,
    FinishReason,
    NewDownload,
    NewEvent,
    PollRecord,
    RemoveResult,
    Snapshot,
    Stats,
    Task,
)
from tracker.errors import DatabaseError, QueryRefusedError, UnknownTaskError
from tracker.store.engine import WRITE
from tracker.store.schema import (
    PENDING,
    RawJSON,
    downloads,
    outbox,
    serialize_json,
    snapshots,
    tasks,
)

# Selected in the order of the dataclasses' fields, so rows become records positionally.
_TASK_COLUMNS = [tasks.c[field.name] for field in fields(Task)]
_SNAPSHOT_COLUMNS = [snapshots.c[field.name] for field in fields(Snapshot)]
_DOWNLOAD_COLUMNS = [downloads.c[field.name] for field in fields(Download)]
# Snapshots of the last minute are looked for among this many newest rows: bounded work on
# any size of history; enough for 4,000 polls a second.
_RECENT_SNAPSHOTS_SCANNED = 250_000
# SQLite before 3.32 allows 999 variables per statement; stay well under it in IN lists.
_CHUNK = 500
MAX_TASKS_PER_PRUNE = 500  # a prune batch's tasks, however short their histories


class Repository(Protocol):
    """What the poller and the commands need from storage."""

    def add_tasks(self, task_ids: Sequence[str], label: str | None, now: datetime) -> AddResult:
        """Register the IDs not registered yet; existing ones are left as they are."""

    def remove_tasks(self, task_ids: Sequence[str], now: datetime) -> RemoveResult:
        """Finish the IDs as ``removed``; raise UnknownTaskError (changing nothing) if any is
        not registered."""

    def claim_due(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        include_not_due: bool = False,
        polled_before: datetime | None = None,
    ) -> list[ClaimedTask]:
        """Lease up to ``limit`` unfinished tasks nobody else holds, earliest due first: those due
        by ``now`` (any, with ``include_not_due``), and not polled since ``polled_before``."""

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        """Write snapshots and task updates for the tasks ``owner`` still holds; release them.
        Returns how many were written."""

    def release(self, owner: str, task_ids: Sequence[str]) -> None:
        """Give up leases on tasks claimed but not polled."""

    def finish_timed_out(
        self,
        now: datetime,
        registered_before: datetime,
        events_for: Callable[[Task], Sequence[NewEvent]] | None = None,
    ) -> list[str]:
        """Finish as ``timed_out`` the unheld, unfinished tasks registered before the cutoff;
        ``events_for`` gives the notifications each one owes, written in the same transaction."""

    def postpone(self, until: datetime) -> None:
        """No unfinished task is due before ``until`` (a rate limit of the whole account)."""

    def lease_owners(self) -> list[str]:
        """The daemons holding leases now, expired or not."""

    def release_owners(self, owners: Sequence[str]) -> None:
        """Give up every lease the given daemons hold (they are known to be gone)."""

    def has_unfinished(self) -> bool: ...

    def tasks(
        self, status: str | None = None, unfinished: bool = False, limit: int | None = None
    ) -> list[Task]:
        """Registered tasks, oldest first (the first ``limit`` of them)."""

    def history(self, task_id: str) -> list[Snapshot]:
        """The task's snapshots, oldest first; UnknownTaskError if it is not registered."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class SQLRepository:
    """The Repository on a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._batches = _PollWrites(engine.dialect)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._engine.connect() as connection:
            connection.execution_options(**WRITE)
            with connection.begin():
                yield connection

    # Registering and removing

    def add_tasks(self, task_ids: Sequence[str], label: str | None, now: datetime) -> AddResult:
        with self._writing() as connection:
            existing = self._existing(connection, task_ids)
            new = [task_id for task_id in task_ids if task_id not in existing]
            if new:
                statement = self._insert_ignoring_existing(tasks, ["task_id"])
                connection.execute(
                    statement,
                    [
                        {
                            "task_id": task_id,
                            "label": label,
                            "registered_at": now,
                            "next_poll_at": now,
                        }
                        for task_id in new
                    ],
                )
        return AddResult(added=new, existing=[t for t in task_ids if t in existing])

    def remove_tasks(self, task_ids: Sequence[str], now: datetime) -> RemoveResult:
        with self._writing() as connection:
            unfinished: set[str] = set()
            known: set[str] = set()
            for chunk in _chunks(task_ids):
                for task_id, finished in connection.execute(
                    select(tasks.c.task_id, tasks.c.finished).where(tasks.c.task_id.in_(chunk))
                ):
                    known.add(task_id)
                    if not finished:
                        unfinished.add(task_id)
            unknown = [task_id for task_id in task_ids if task_id not in known]
            if unknown:
                raise UnknownTaskError(f"unknown task ID {unknown[0]!r}: nothing was removed")
            for chunk in _chunks(sorted(unfinished)):
                connection.execute(
                    update(tasks)
                    .where(tasks.c.task_id.in_(chunk), tasks.c.finished == false())
                    .values(
                        finished=True,
                        finish_reason=FinishReason.REMOVED.value,
                        finished_at=now,
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                )
        return RemoveResult(
            removed=[t for t in task_ids if t in unfinished],
            already_finished=[t for t in task_ids if t not in unfinished],
        )

    def _existing(self, connection: Connection, task_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(task_ids):
            found.update(
                connection.scalars(select(tasks.c.task_id).where(tasks.c.task_id.in_(chunk)))
            )
        return found

    # Polling

    def claim_due(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        include_not_due: bool = False,
        polled_before: datetime | None = None,
    ) -> list[ClaimedTask]:
        conditions = [
            tasks.c.finished == false(),
            _lease_free(tasks, now),
        ]
        if not include_not_due:
            conditions.append(tasks.c.next_poll_at <= now)
        if polled_before is not None:
            conditions.append(
                tasks.c.last_polled_at.is_(None) | (tasks.c.last_polled_at < polled_before)
            )
        candidates = (
            select(tasks.c.task_id)
            .where(*conditions)
            .order_by(tasks.c.next_poll_at)
            .limit(limit)
            # PostgreSQL: daemons sharing the table skip each other's rows instead of waiting.
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(tasks)
            .where(tasks.c.task_id.in_(candidates))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(
                tasks.c.task_id,
                tasks.c.registered_at,
                tasks.c.error_count,
                tasks.c.not_found_count,
                tasks.c.next_poll_at,
                tasks.c.status,
                tasks.c.progress,
                tasks.c.last_error,
            )
        )
        with self._writing() as connection:
            rows = list(connection.execute(claim))
        rows.sort(key=lambda row: row.next_poll_at)
        return [
            ClaimedTask(
                task_id=row.task_id,
                registered_at=row.registered_at,
                error_count=row.error_count,
                not_found_count=row.not_found_count,
                next_poll_at=row.next_poll_at,
                status=row.status,
                progress=row.progress,
                last_error=row.last_error,
            )
            for row in rows
        ]

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        if not records:
            return 0
        try:
            return self._record_polls(owner, records)
        except (OperationalError, InterfaceError):
            raise  # the database itself is in trouble: the poller keeps the batch and retries
        except (SQLAlchemyError, ValueError) as exc:
            # One record the database refuses must not hold back the rest for ever.
            if len(records) > 1:
                return sum(self.record_polls(owner, [record]) for record in records)
            try:
                return self._record_polls(owner, [_without_answer(records[0], exc)])
            except (OperationalError, InterfaceError):
                raise
            except (SQLAlchemyError, ValueError):
                return 0  # counted as dropped by the poller, which says so

    def _record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        with self._writing() as connection:
            held: set[str] = set()
            for chunk in _chunks([record.task_id for record in records]):
                held.update(
                    connection.scalars(
                        select(tasks.c.task_id)
                        .where(tasks.c.task_id.in_(chunk), tasks.c.lease_owner == owner)
                        .with_for_update()
                    )
                )
            kept = [record for record in records if record.task_id in held]
            if not kept:
                return 0
            batches = self._batches
            stored = [_snapshot_row(r) for r in kept if r.store_snapshot]
            if stored:
                batches.insert_snapshots.execute(connection, stored)
            answered = [_task_row(record) for record in kept if record.fetch.video is not None]
            unanswered = [_task_row(record) for record in kept if record.fetch.video is None]
            if answered:
                batches.update_answered.execute(connection, answered)
            if unanswered:
                batches.update_unanswered.execute(connection, unanswered)
            self._owe(
                connection,
                [(r.task_id, d) for r in kept for d in r.downloads],
                [(r.task_id, e) for r in kept for e in r.events],
                kept[0].polled_at,
            )
        return len(kept)

    def _owe(
        self,
        connection: Connection,
        new_downloads: Sequence[tuple[str, NewDownload]],
        new_events: Sequence[tuple[str, NewEvent]],
        now: datetime,
    ) -> None:
        """Write what finished tasks owe, in the transaction that finished them."""
        if new_downloads:
            connection.execute(
                self._insert_ignoring_existing(downloads, ["task_id", "variant"]),
                [
                    {
                        "task_id": task_id,
                        "variant": d.variant,
                        "expires_at": d.expires_at,
                        "next_attempt_at": now,
                    }
                    for task_id, d in new_downloads
                ],
            )
        if new_events:
            connection.execute(
                outbox.insert(),
                [
                    {
                        "task_id": task_id,
                        "channel": e.channel,
                        "event_id": e.event_id,
                        "payload": e.payload,
                        "created_at": now,
                        "next_attempt_at": now,
                    }
                    for task_id, e in new_events
                ],
            )

    def postpone(self, until: datetime) -> None:
        with self._writing() as connection:
            connection.execute(
                update(tasks)
                .where(tasks.c.finished == false(), tasks.c.next_poll_at < until)
                .values(next_poll_at=until)
            )

    def lease_owners(self) -> list[str]:
        owners = union(
            *(
                select(table.c.lease_owner).where(table.c.lease_owner.is_not(None))
                for table in (tasks, downloads, outbox)
            )
        )
        with self._engine.connect() as connection:
            return sorted(connection.scalars(select(owners.subquery().c.lease_owner)))

    def release_owners(self, owners: Sequence[str]) -> None:
        with self._writing() as connection:
            for table in (tasks, downloads, outbox):
                connection.execute(
                    update(table)
                    .where(table.c.lease_owner.in_(owners))
                    .values(lease_owner=None, lease_expires_at=None)
                )

    def release(self, owner: str, task_ids: Sequence[str]) -> None:
        with self._writing() as connection:
            for chunk in _chunks(task_ids):
                connection.execute(
                    update(tasks)
                    .where(tasks.c.task_id.in_(chunk), tasks.c.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )

    def finish_timed_out(
        self,
        now: datetime,
        registered_before: datetime,
        events_for: Callable[[Task], Sequence[NewEvent]] | None = None,
    ) -> list[str]:
        statement = (
            update(tasks)
            .where(
                tasks.c.finished == false(),
                tasks.c.registered_at < registered_before,
                _lease_free(tasks, now),
            )
            .values(
                finished=True,
                finish_reason=FinishReason.TIMED_OUT.value,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(*_TASK_COLUMNS)
        )
        with self._writing() as connection:
            finished = [Task(*row) for row in connection.execute(statement)]
            if events_for is not None:
                owed = [(task.task_id, event) for task in finished for event in events_for(task)]
                self._owe(connection, [], owed, now)
        return [task.task_id for task in finished]

    # Follow-ups: downloads and notifications

    def schedule_downloads(
        self, task_id: str, new_downloads: Sequence[NewDownload], now: datetime
    ) -> None:
        """(Re)start the given downloads of a task, due now. One already pending is kept, made
        due now unless a daemon holds it (its attempt is under way and ends by itself)."""
        variants = [d.variant for d in new_downloads]
        of_these = [downloads.c.task_id == task_id, downloads.c.variant.in_(variants)]
        pending = downloads.c.state == PENDING
        with self._writing() as connection:
            connection.execute(delete(downloads).where(*of_these, ~pending))
            connection.execute(
                update(downloads)
                .where(*of_these, pending, _lease_free(downloads, now))
                .values(next_attempt_at=now)
            )
            self._owe(connection, [(task_id, d) for d in new_downloads], [], now)

    def claim_downloads(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        task_id: str | None = None,
    ) -> list[DownloadJob]:
        """Claim due downloads (of one task only, with ``task_id``)."""
        only = [downloads.c.task_id == task_id] if task_id is not None else []
        candidates = _due(downloads, now, limit, *only)
        claim = (
            update(downloads)
            .where(tuple_(downloads.c.task_id, downloads.c.variant).in_(candidates))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(
                downloads.c.task_id,
                downloads.c.variant,
                downloads.c.attempts,
                downloads.c.expires_at,
                downloads.c.last_error,
            )
        )
        with self._writing() as connection:
            return [DownloadJob(*row) for row in connection.execute(claim)]

    def record_download(self, owner: str, job: DownloadJob, outcome: DownloadOutcome) -> None:
        """Write how a download attempt ended and give its lease back."""
        values = _attempt_values(downloads, outcome)
        if outcome.state == "done":
            values.update(
                path=outcome.path,
                size_bytes=outcome.size_bytes,
                sha256=outcome.sha256,
                downloaded_at=outcome.at,
            )
        with self._writing() as connection:
            connection.execute(
                update(downloads)
                .where(
                    downloads.c.task_id == job.task_id,
                    downloads.c.variant == job.variant,
                    downloads.c.lease_owner == owner,
                )
                .values(**values)
            )

    def downloads(self, task_id: str | None = None) -> list[Download]:
        query = select(*_DOWNLOAD_COLUMNS).order_by(downloads.c.task_id, downloads.c.variant)
        if task_id is not None:
            query = query.where(downloads.c.task_id == task_id)
        with self._engine.connect() as connection:
            return [Download(*row) for row in connection.execute(query)]

    def claim_events(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        channels: tuple[str, ...] = ("webhook", "command"),
    ) -> list[EventJob]:
        """Claim due notifications on the given channels (those this daemon can deliver) of
        tasks whose downloads are settled, so that the event can say where the video was saved."""
        # A download nobody does (no daemon with --download-dir) holds its event back only
        # until the assets expire; after that the event goes out without a path.
        downloading = (
            select(downloads.c.task_id)
            .where(
                downloads.c.task_id == outbox.c.task_id,
                downloads.c.state == PENDING,
                downloads.c.expires_at.is_(None) | (downloads.c.expires_at > now),
            )
            .exists()
        )
        candidates = _due(outbox, now, limit, ~downloading, outbox.c.channel.in_(channels))
        saved = downloads.alias("saved")
        claim = (
            update(outbox)
            .where(outbox.c.id.in_(candidates))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(
                outbox.c.id,
                outbox.c.task_id,
                outbox.c.channel,
                outbox.c.event_id,
                outbox.c.payload,
                outbox.c.attempts,
                outbox.c.created_at,
            )
        )
        with self._writing() as connection:
            jobs = [EventJob(*row) for row in connection.execute(claim)]
            saved_paths = connection.execute(
                select(saved.c.task_id, saved.c.path).where(
                    saved.c.task_id.in_({job.task_id for job in jobs}),
                    saved.c.variant == "video",
                    saved.c.state == "done",
                )
            )
            paths = {task_id: path for task_id, path in saved_paths}
        return [
            replace(job, payload={**job.payload, "download_path": paths.get(job.task_id)})
            for job in jobs
        ]

    def record_event(self, owner: str, job: EventJob, outcome: EventOutcome) -> None:
        values = _attempt_values(outbox, outcome)
        if outcome.state == "delivered":
            values["delivered_at"] = outcome.at
        with self._writing() as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == job.id, outbox.c.lease_owner == owner)
                .values(**values)
            )

    def events(self, task_id: str | None = None) -> list[dict[str, Any]]:
        query = select(outbox).order_by(outbox.c.id)
        if task_id is not None:
            query = query.where(outbox.c.task_id == task_id)
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def follow_ups_owed(self, downloading: bool, channels: tuple[str, ...]) -> bool:
        """Whether a daemon that downloads (or not) and delivers on ``channels`` still owes
        work: pending downloads it can do, pending notifications it can deliver."""
        owed: ColumnElement[bool] = exists().where(
            outbox.c.state == PENDING, outbox.c.channel.in_(channels)
        )
        if downloading:
            owed = owed | exists().where(downloads.c.state == PENDING)
        with self._engine.connect() as connection:
            return bool(connection.scalar(select(owed)))

    def renew_download(self, owner: str, job: DownloadJob, lease_until: datetime) -> None:
        """Keep the lease of a download that is still running."""
        with self._writing() as connection:
            connection.execute(
                update(downloads)
                .where(
                    downloads.c.task_id == job.task_id,
                    downloads.c.variant == job.variant,
                    downloads.c.lease_owner == owner,
                )
                .values(lease_expires_at=lease_until)
            )

    def poll_now(self, task_id: str, now: datetime) -> bool:
        """Make an unfinished task due at once (a webhook said it changed)."""
        with self._writing() as connection:
            result = connection.execute(
                update(tasks)
                .where(tasks.c.task_id == task_id, tasks.c.finished == false())
                .values(next_poll_at=now)
            )
            return bool(result.rowcount)

    def _insert_ignoring_existing(self, table: Table, keys: list[str]) -> Any:
        """INSERT … ON CONFLICT DO NOTHING, from the dialect in use only: importing
        PostgreSQL's would slow every command on SQLite."""
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(table).on_conflict_do_nothing(index_elements=keys)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)

    # Reading

    def stats(self, now: datetime) -> Stats:
        """Counts for `tracker stats`, `watch` and the metrics: cheap on any size of history
        (recent snapshots are counted among the newest rows only)."""
        unfinished = tasks.c.finished == false()
        free = _lease_free(tasks, now)
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
                select(
                    func.count(),
                    func.count(newest.c.error),
                ).where(newest.c.polled_at > minute_ago)
            ).one()
            return Stats(
                at=now,
                unfinished=counts[0],
                finished=_by(connection, tasks.c.finish_reason, tasks.c.finished == true()),
                due=counts[1],
                held=counts[2],
                oldest_unfinished=_aware(counts[3]),
                snapshots_last_minute=recent[0],
                errors_last_minute=recent[1],
                polls_total=int(counts[4]),
                downloads=_by(connection, downloads.c.state),
                notifications=_by(connection, outbox.c.state),
            )

    def prune_batch(
        self,
        older_than: datetime,
        after_task_id: str | None,
        snapshots_per_batch: int,
        dry_run: bool,
    ) -> tuple[int, str | None]:
        """Delete (or with ``dry_run`` count) the snapshots older than ``older_than`` of the next
        finished tasks after ``after_task_id``, as many tasks as hold about
        ``snapshots_per_batch`` snapshots (at least one), keeping each task's first snapshot, its
        last (the one that finished it, or the last seen of a task given up or removed), and
        every one whose status differs from the snapshot before it. Returns the count and the
        last task looked at (None when done).

        Batches bounded by the rows they read keep each transaction short, however long the
        tasks' histories, so pruning never holds the database for long; a task's snapshots are
        read through their (task_id, polled_at) index, so the cost follows what is pruned, not
        the size of the table."""
        candidates = (
            select(tasks.c.task_id, tasks.c.poll_count)
            .where(tasks.c.finished == true())
            .order_by(tasks.c.task_id)
            .limit(MAX_TASKS_PER_PRUNE)
        )
        if after_task_id is not None:
            candidates = candidates.where(tasks.c.task_id > after_task_id)
        forward = (snapshots.c.polled_at, snapshots.c.id)
        backward = (snapshots.c.polled_at.desc(), snapshots.c.id.desc())
        with self._writing() as connection:
            task_ids: list[str] = []
            held = 0
            # poll_count bounds a task's snapshots (fewer with --record changes).
            for task_id, poll_count in connection.execute(candidates):
                if task_ids and held + poll_count > snapshots_per_batch:
                    break
                task_ids.append(task_id)
                held += poll_count
            if not task_ids:
                return 0, None
            ordered = (
                select(
                    snapshots.c.id,
                    snapshots.c.polled_at,
                    snapshots.c.finished,
                    snapshots.c.status,
                    func.lag(snapshots.c.status)
                    .over(partition_by=snapshots.c.task_id, order_by=forward)
                    .label("previous_status"),
                    func.row_number()
                    .over(partition_by=snapshots.c.task_id, order_by=forward)
                    .label("position"),
                    func.row_number()
                    .over(partition_by=snapshots.c.task_id, order_by=backward)
                    .label("from_end"),
                )
                .where(snapshots.c.task_id.in_(task_ids))
                .subquery()
            )
            prunable = select(ordered.c.id).where(
                ordered.c.polled_at < older_than,
                ordered.c.position > 1,
                ordered.c.from_end > 1,
                ordered.c.finished == false(),
                ordered.c.status.is_not_distinct_from(ordered.c.previous_status),
            )
            if dry_run:
                count = connection.scalar(select(func.count()).select_from(prunable.subquery()))
            else:
                count = connection.execute(
                    delete(snapshots).where(snapshots.c.id.in_(prunable))
                ).rowcount
        return int(count or 0), task_ids[-1]

    def export_rows(self, table: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        """Every row of ``tasks`` or ``snapshots`` (those since ``since``: polled since, or for
        tasks registered or polled since), streamed in id or registration order."""
        if table == "tasks":
            query = select(*_TASK_COLUMNS).order_by(tasks.c.registered_at, tasks.c.task_id)
            if since is not None:
                query = query.where(
                    (tasks.c.registered_at >= since) | (tasks.c.last_polled_at >= since)
                )
        else:
            query = select(*_SNAPSHOT_COLUMNS).order_by(snapshots.c.id)
            if since is not None:
                query = query.where(snapshots.c.polled_at >= since)
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=2000).execute(query)
            for row in result:
                yield dict(row._mapping)

    def has_unfinished(self) -> bool:
        with self._engine.connect() as connection:
            return bool(connection.scalar(select(exists().where(tasks.c.finished == false()))))

    def tasks(
        self, status: str | None = None, unfinished: bool = False, limit: int | None = None
    ) -> list[Task]:
        query = select(*_TASK_COLUMNS).order_by(tasks.c.registered_at, tasks.c.task_id)
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
            query = select(*_TASK_COLUMNS).where(tasks.c.task_id == task_id)
            row = connection.execute(query).first()
        return None if row is None else Task(*row)

    def history(self, task_id: str) -> list[Snapshot]:
        with self._engine.connect() as connection:
            known = connection.scalar(select(exists().where(tasks.c.task_id == task_id)))
            if not known:
                raise UnknownTaskError(f"unknown task ID {task_id!r}")
            rows = connection.execute(
                select(*_SNAPSHOT_COLUMNS)
                .where(snapshots.c.task_id == task_id)
                .order_by(snapshots.c.polled_at, snapshots.c.id)
            )
            return [Snapshot(*row) for row in rows]

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


# What a read-only statement starts with, after comments and opening parentheses.
_READS = re.compile(r"(\s+|--[^\n]*(\n|$)|/\*.*?\*/|\()*(select|with|values|table)\b", re.I | re.S)
READ_ONLY_TIMEOUT_SECONDS = 60


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


_READ_ONLY_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


def _by(connection: Connection, column: Any, *conditions: Any) -> dict[str, int]:
    query = select(column, func.count()).where(*conditions).group_by(column)
    return {str(key): count for key, count in connection.execute(query)}


def _aware(value: datetime | str | None) -> datetime | None:
    """An aggregate's timestamp: SQLite gives the stored text back, untyped."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _attempt_values(table: Table, outcome: DownloadOutcome | EventOutcome) -> dict[str, Any]:
    """The columns every ended attempt at a download or a notification sets in ``table``:
    its state and error, one more attempt, the next one if any, and the lease given back."""
    values: dict[str, Any] = {
        "state": outcome.state,
        "attempts": table.c.attempts + 1,
        "last_error": outcome.error,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if outcome.next_attempt_at is not None:
        values["next_attempt_at"] = outcome.next_attempt_at
    return values


def _lease_free(table: Table, now: datetime) -> ColumnElement[bool]:
    """Rows of ``table`` no daemon holds at ``now``: never leased, or the lease ran out."""
    return table.c.lease_expires_at.is_(None) | (table.c.lease_expires_at <= now)


def _due(table: Table, now: datetime, limit: int, *conditions: Any) -> Any:
    """The keys of up to ``limit`` pending rows due by ``now`` that nobody holds (PostgreSQL:
    skipping rows other daemons are claiming), earliest first."""
    key = [column for column in table.primary_key.columns]
    return (
        select(*key)
        .where(
            table.c.state == PENDING,
            table.c.next_attempt_at <= now,
            _lease_free(table, now),
            *conditions,
        )
        .order_by(table.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _read_only_authorizer(action: int, *_args: object) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ONLY_ACTIONS else sqlite3.SQLITE_DENY


def _refusal(message: str) -> str:
    message = message.strip().splitlines()[0] if message.strip() else "invalid query"
    if "not authorized" in message or "read-only transaction" in message:
        return "refused: tracker sql runs read-only statements (SELECT, WITH) only"
    if "one statement at a time" in message or "multiple commands" in message:
        return "refused: tracker sql runs exactly one statement"
    return f"refused: {message}"


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class _BatchStatement:
    """A statement compiled once and run with executemany at the driver level.

    Writing polls is the hot path: SQLAlchemy's per-row parameter processing cost more than the
    database's own work for these rows (README, Performance), so the few conversions the
    drivers need are done here instead: timestamps and booleans for SQLite, JSON as text.
    Rows are tuples in the order of the compiled statement's positional parameters.
    """

    def __init__(
        self, statement: Any, dialect: Dialect, keys: Sequence[str], insert: bool = False
    ) -> None:
        positional = copy.copy(dialect)
        positional.paramstyle = "qmark" if dialect.name == "sqlite" else "format"
        positional.positional = True
        # An INSERT is compiled for exactly the columns given; an UPDATE names its parameters.
        compiled = statement.compile(dialect=positional, column_keys=list(keys) if insert else None)
        order = compiled.positiontup or []
        if set(order) != set(keys):
            raise ValueError(f"statement parameters {order} are not the row keys {keys}")
        self._sql = compiled.string
        self._values = operator.itemgetter(*order)
        sqlite = dialect.name == "sqlite"
        self._conversions = [
            (index, conversion)
            for index, name in enumerate(order)
            if (conversion := _conversion(name, sqlite)) is not None
        ]

    def execute(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        params = []
        for row in rows:
            values = list(self._values(row))
            for index, conversion in self._conversions:
                values[index] = conversion(values[index])
            params.append(tuple(values))
        connection.exec_driver_sql(self._sql, params)


def _conversion(name: str, sqlite: bool) -> Callable[[Any], Any] | None:
    if name in _JSON_PARAMETERS:
        return _json_text
    if sqlite and name in _TIMESTAMP_PARAMETERS:
        return _sqlite_timestamp
    if sqlite and name in _BOOLEAN_PARAMETERS:
        return int
    return None


def _json_text(value: Any) -> str | None:
    return None if value is None else serialize_json(value)


def _sqlite_timestamp(value: datetime | None) -> str | None:
    """The text SQLAlchemy writes for a DateTime on SQLite, so comparisons agree."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", timespec="microseconds")[:26]  # without the "+00:00"


_TIMESTAMP_PARAMETERS = frozenset(
    {
        "polled_at",
        "b_polled_at",
        "b_next_poll_at",
        "b_finished_at",
        "b_created_at",
        "b_completed_at",
        "b_expires_at",
    }
)
_BOOLEAN_PARAMETERS = frozenset({"finished", "b_finished"})
_JSON_PARAMETERS = frozenset({"error", "body"})
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
)
_POLLED_KEYS = (
    "b_task_id",
    "b_polled_at",
    "b_next_poll_at",
    "b_error_count",
    "b_not_found_count",
    "b_last_error",
    "b_finished",
    "b_finish_reason",
    "b_finished_at",
)
_ANSWERED_KEYS = (
    *_POLLED_KEYS,
    "b_status",
    "b_progress",
    "b_model",
    "b_seconds",
    "b_size",
    "b_created_at",
    "b_completed_at",
    "b_expires_at",
)


class _PollWrites:
    """The three statements that write a batch of polls, compiled for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.insert_snapshots = _BatchStatement(
            snapshots.insert().inline(), dialect, _SNAPSHOT_KEYS, insert=True
        )
        self.update_answered = _BatchStatement(_UPDATE_ANSWERED, dialect, _ANSWERED_KEYS)
        self.update_unanswered = _BatchStatement(_UPDATE_UNANSWERED, dialect, _POLLED_KEYS)


def _without_answer(record: PollRecord, exc: Exception) -> PollRecord:
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
    }


def _task_row(record: PollRecord) -> dict[str, Any]:
    video = record.fetch.video
    row: dict[str, Any] = {
        "b_task_id": record.task_id,
        "b_polled_at": record.polled_at,
        "b_next_poll_at": record.next_poll_at,
        "b_error_count": record.error_count,
        "b_not_found_count": record.not_found_count,
        "b_last_error": record.last_error,
        "b_finished": record.finished,
        "b_finish_reason": record.finish_reason.value if record.finish_reason else None,
        "b_finished_at": record.polled_at if record.finished else None,
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
        )
    return row


_POLLED = {
    "last_polled_at": bindparam("b_polled_at", type_=tasks.c.last_polled_at.type),
    "next_poll_at": bindparam("b_next_poll_at", type_=tasks.c.next_poll_at.type),
    "poll_count": tasks.c.poll_count + literal_column("1"),
    "error_count": bindparam("b_error_count"),
    "not_found_count": bindparam("b_not_found_count"),
    "last_error": bindparam("b_last_error"),
    "finished": bindparam("b_finished", type_=tasks.c.finished.type),
    "finish_reason": bindparam("b_finish_reason"),
    "finished_at": bindparam("b_finished_at", type_=tasks.c.finished_at.type),
    "lease_owner": null(),
    "lease_expires_at": null(),
}


def _keep_known(column: str) -> Any:
    """Relays omit fields on some answers: a missing value keeps the one seen before."""
    return func.coalesce(bindparam(f"b_{column}", type_=tasks.c[column].type), tasks.c[column])


_UPDATE_ANSWERED = (
    update(tasks)
    .where(tasks.c.task_id == bindparam("b_task_id"))
    .values(
        status=bindparam("b_status"),
        progress=_keep_known("progress"),
        model=_keep_known("model"),
        seconds=_keep_known("seconds"),
        size=_keep_known("size"),
        created_at=_keep_known("created_at"),
        completed_at=_keep_known("completed_at"),
        expires_at=_keep_known("expires_at"),
        **_POLLED,
    )
)
_UPDATE_UNANSWERED = (
    update(tasks).where(tasks.c.task_id == bindparam("b_task_id")).values(**_POLLED)
)
