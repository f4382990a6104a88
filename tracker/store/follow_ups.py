"""What a finished task owes: its files (``downloads``) and its notifications (``outbox``),
written in the transaction that finishes it, then claimed and settled by the daemon's workers
(docs/follow-ups.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, exists, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from tracker.core.follow_ups import (
    Download,
    DownloadJob,
    DownloadOutcome,
    EventJob,
    EventOutcome,
    NewDownload,
    NewEvent,
)
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.store.base import SQLStore, due_pending, lease_free
from tracker.store.schema import PENDING, downloads, outbox, tasks
from tracker.store.tallies import tally
from tracker.store.wakeups import Topic, tell

DOWNLOAD_COLUMNS = [downloads.c[field.name] for field in fields(Download)]
# A claimed download's columns; its provider is the task's.
_DOWNLOAD_JOB_COLUMNS = [downloads.c[f.name] for f in fields(DownloadJob) if f.name != "provider"]


def owe(
    connection: Connection,
    insert_ignoring_existing: Callable[[Table, list[str]], Any],
    new_downloads: Sequence[tuple[str, NewDownload]],
    new_events: Sequence[tuple[str, NewEvent]],
    now: datetime,
) -> None:
    """Write what finished tasks owe, inside the caller's transaction (the one finishing them)."""
    if new_downloads or new_events:
        tell(connection, Topic.FOLLOW_UPS)
    if new_downloads:
        connection.execute(
            insert_ignoring_existing(downloads, ["task_id", "variant"]),
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


class FollowUpStore(SQLStore):
    """Downloads and notifications: claimed with short leases, one outcome per attempt."""

    def schedule_downloads(
        self, task_id: str, new_downloads: Sequence[NewDownload], now: datetime
    ) -> None:
        """(Re)start the given downloads of a task, due now. One already pending is kept, made
        due now unless a daemon holds it (its attempt is under way and ends by itself)."""
        variants = [d.variant for d in new_downloads]
        of_these = [downloads.c.task_id == task_id, downloads.c.variant.in_(variants)]
        pending = downloads.c.state == PENDING
        with self._writing() as connection:
            settled = connection.execute(
                delete(downloads).where(*of_these, ~pending).returning(downloads.c.state)
            )
            tally(
                connection,
                "downloads",
                {state: -n for state, n in Counter(settled.scalars()).items()},
            )
            connection.execute(
                update(downloads)
                .where(*of_these, pending, lease_free(downloads, now))
                .values(next_attempt_at=now)
            )
            owe(
                connection,
                self._insert_ignoring_existing,
                [(task_id, d) for d in new_downloads],
                [],
                now,
            )

    def claim_downloads(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        task_id: str | None = None,
        providers: Collection[str] | None = None,
    ) -> list[DownloadJob]:
        """Claim due downloads (of one task only, with ``task_id``; of tasks of ``providers``
        only, if given: another daemon may have the others' keys)."""
        only = [downloads.c.task_id == task_id] if task_id is not None else []
        only += _of_providers(providers)
        candidates = due_pending(downloads, now, limit, *only)
        claim = (
            update(downloads)
            .where(tuple_(downloads.c.task_id, downloads.c.variant).in_(candidates))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(*_DOWNLOAD_JOB_COLUMNS)
        )
        with self._writing() as connection:
            claimed = list(connection.execute(claim))
            ids = {row.task_id for row in claimed}
            of_tasks = select(tasks.c.task_id, tasks.c.provider).where(tasks.c.task_id.in_(ids))
            providers = {task_id: provider for task_id, provider in connection.execute(of_tasks)}
        return [
            DownloadJob(**row._mapping, provider=providers.get(row.task_id, DEFAULT_PROVIDER))
            for row in claimed
        ]

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
            written = connection.execute(
                update(downloads)
                .where(*_held_download(owner, job))
                .values(**values)
                .execution_options(preserve_rowcount=True)
            )
            if written.rowcount and outcome.state != "pending":
                tally(connection, "downloads", {outcome.state: 1})
            tell(connection, Topic.FOLLOW_UPS)  # its task's notifications may go now

    def renew_download(self, owner: str, job: DownloadJob, lease_until: datetime) -> None:
        """Keep the lease of a download that is still running."""
        with self._writing() as connection:
            connection.execute(
                update(downloads)
                .where(*_held_download(owner, job))
                .values(lease_expires_at=lease_until)
            )

    def downloads(self, task_id: str | None = None) -> list[Download]:
        query = select(*DOWNLOAD_COLUMNS).order_by(downloads.c.task_id, downloads.c.variant)
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
        candidates = due_pending(outbox, now, limit, ~downloading, outbox.c.channel.in_(channels))
        claim = (
            update(outbox)
            .where(outbox.c.id.in_(candidates))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(*(outbox.c[field.name] for field in fields(EventJob)))
        )
        saved = downloads.alias("saved")
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
            written = connection.execute(
                update(outbox)
                .where(outbox.c.id == job.id, outbox.c.lease_owner == owner)
                .values(**values)
                .execution_options(preserve_rowcount=True)
            )
            if written.rowcount and outcome.state != "pending":
                tally(connection, "notifications", {outcome.state: 1})

    def events(self, task_id: str | None = None) -> list[dict[str, Any]]:
        query = select(outbox).order_by(outbox.c.id)
        if task_id is not None:
            query = query.where(outbox.c.task_id == task_id)
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def owed(
        self,
        downloading: bool,
        channels: tuple[str, ...],
        providers: Collection[str] | None = None,
        task_ids: Collection[str] | None = None,
    ) -> bool:
        """Whether a daemon that downloads (or not) and delivers on ``channels`` still owes
        work: pending downloads it can do (of tasks of ``providers``, if given), pending
        notifications it can deliver (of ``task_ids`` only, if given)."""
        of_tasks: list[ColumnElement[bool]] = []
        if task_ids is not None:
            of_tasks = [outbox.c.task_id.in_(list(task_ids))]
        owed: ColumnElement[bool] = exists().where(
            outbox.c.state == PENDING, outbox.c.channel.in_(channels), *of_tasks
        )
        if downloading:
            if task_ids is not None:
                of_tasks = [downloads.c.task_id.in_(list(task_ids))]
            owed = owed | exists().where(
                downloads.c.state == PENDING, *_of_providers(providers), *of_tasks
            )
        with self._engine.connect() as connection:
            return bool(connection.scalar(select(owed)))


def _of_providers(providers: Collection[str] | None) -> list[ColumnElement[bool]]:
    if providers is None:
        return []
    of_tasks = select(tasks.c.task_id).where(tasks.c.provider.in_(providers))
    return [downloads.c.task_id.in_(of_tasks)]


def _held_download(owner: str, job: DownloadJob) -> list[ColumnElement[bool]]:
    return [
        downloads.c.task_id == job.task_id,
        downloads.c.variant == job.variant,
        downloads.c.lease_owner == owner,
    ]


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
