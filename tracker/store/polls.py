"""The polling side of the tasks table: claiming due tasks with a lease, writing what the polls
saw, giving tasks back, finishing those past give-up-after, pausing a provider's."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, exists, false, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from tracker.core.models import ClaimedTask, FinishReason, PollRecord, Task
from tracker.core.owed import owed_without_poll
from tracker.core.pauses import Pause, PauseReason
from tracker.store.base import SQLStore, chunks, lease_free
from tracker.store.batch import PollWrites, without_answer
from tracker.store.bulk import OneStepRead, one_of_json_list
from tracker.store.feed import will_write_snapshots
from tracker.store.follow_ups import owe
from tracker.store.schema import pauses, snapshots, tasks
from tracker.store.tallies import tally
from tracker.store.wakeups import Topic, Wakeups, tell

TASK_COLUMNS = [tasks.c[field.name] for field in fields(Task)]
_CLAIMED_COLUMNS = [tasks.c[field.name] for field in fields(ClaimedTask)]
PAUSE_COLUMNS = [pauses.c[column.name] for column in pauses.columns]


def pause_of(row: Sequence[Any]) -> Pause:
    """A row of ``pauses`` (its columns in PAUSE_COLUMNS order, and ``waiting`` if read)."""
    provider, until, reason, refusals, updated_at, *waiting = row
    return Pause(provider, until, PauseReason(reason), refusals, updated_at, *waiting)


def _of(provider: str | None) -> list[ColumnElement[bool]]:
    return [] if provider is None else [tasks.c.provider == provider]


def _pause_row(pause: Pause) -> dict[str, Any]:
    return {column.name: getattr(pause, column.name) for column in pauses.columns}


class PollStore(SQLStore):
    """Leases on due tasks and the writes of their polls (docs/scaling.md: how daemons share
    the work)."""

    def __init__(self, engine: Engine, wakeups: Wakeups | None = None) -> None:
        super().__init__(engine, wakeups)
        self._writes = PollWrites(engine.dialect)

    def claim_due(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        *,
        include_not_due: bool = False,
        polled_before: datetime | None = None,
        provider: str | None = None,
    ) -> list[ClaimedTask]:
        """Lease up to ``limit`` unfinished tasks nobody else holds, earliest due first: those due
        by ``now`` (any, with ``include_not_due``), not polled since ``polled_before``, of
        ``provider`` only if given."""
        conditions = [tasks.c.finished == false(), lease_free(tasks, now), *_of(provider)]
        if not include_not_due:
            conditions.append(tasks.c.next_poll_at <= now)
        if polled_before is not None:
            conditions.append(
                tasks.c.last_polled_at.is_(None) | (tasks.c.last_polled_at < polled_before)
            )
        due = (
            select(*_CLAIMED_COLUMNS).where(*conditions).order_by(tasks.c.next_poll_at).limit(limit)
        )
        lease = {"lease_owner": owner, "lease_expires_at": lease_until}
        with self._writing() as connection:
            if connection.dialect.name == "sqlite":
                # Not UPDATE … RETURNING, whose rows the driver steps to one at a time, each
                # step waiting for the interpreter's lock beside a busy event loop: read in one
                # step (bulk.OneStepRead), then leased by their IDs, in the transaction
                # that holds the file's write lock.
                claimed = [
                    ClaimedTask(*row)
                    for row in OneStepRead(due, connection.dialect).rows(connection)
                ]
                if claimed:
                    ids = json.dumps([task.task_id for task in claimed], ensure_ascii=False)
                    connection.execute(
                        update(tasks).where(one_of_json_list(tasks.c.task_id, "ids")).values(lease),
                        {"ids": ids},
                    )
            else:
                # PostgreSQL: daemons sharing the table skip each other's rows instead of
                # waiting.
                candidates = due.with_only_columns(tasks.c.task_id).with_for_update(
                    skip_locked=True
                )
                claim = (
                    update(tasks)
                    .where(tasks.c.task_id.in_(candidates.scalar_subquery()))
                    .values(lease)
                    .returning(*_CLAIMED_COLUMNS)
                )
                claimed = [ClaimedTask(*row) for row in connection.execute(claim)]
        claimed.sort(key=lambda task: task.next_poll_at)
        return claimed

    def next_due(self, now: datetime, provider: str | None = None) -> datetime | None:
        """When the earliest unfinished task nobody holds at ``now`` (of ``provider`` only, if
        given) is due (perhaps already); None without one. A read of the due index's first
        entry: what an idle daemon asks instead of claiming."""
        query = (
            select(tasks.c.next_poll_at)
            .where(tasks.c.finished == false(), lease_free(tasks, now), *_of(provider))
            .order_by(tasks.c.next_poll_at)
            .limit(1)
        )
        with self._engine.connect() as connection:
            due: datetime | None = connection.scalar(query)
            return due

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        """Write snapshots and task updates for the tasks ``owner`` still holds, with what
        finished ones owe; release them. Returns how many were written."""
        if not records:
            return 0
        try:
            return self._record_polls(owner, records)
        except (OperationalError, InterfaceError):
            raise  # the database itself is in trouble: the poller keeps the batch and retries
        except (SQLAlchemyError, ValueError) as exc:
            # One record the database refuses must not hold back the rest for ever. A task's
            # polls go together (the first gives its lease up, and the next would find it
            # gone), and all of them lose their answers if one is refused.
            by_task: dict[str, list[PollRecord]] = {}
            for record in records:
                by_task.setdefault(record.task_id, []).append(record)
            if len(by_task) > 1:
                return sum(self.record_polls(owner, polls) for polls in by_task.values())
            try:
                return self._record_polls(owner, [without_answer(r, exc) for r in records])
            except (OperationalError, InterfaceError):
                raise
            except (SQLAlchemyError, ValueError):
                return 0  # counted as dropped by the poller, which says so

    def _record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        with self._writing() as connection:
            will_write_snapshots(connection)
            kept = self._writes.write_held(connection, owner, records)
            if not kept:
                return 0
            if any(record.store_snapshot for record in kept):
                tell(connection, Topic.SNAPSHOTS)
            reasons = Counter(r.finish_reason.value for r in kept if r.finish_reason is not None)
            tally(connection, "finished", reasons)
            owe(
                connection,
                self._insert_ignoring_existing,
                [(r.task_id, d) for r in kept for d in r.downloads],
                [(r.task_id, e) for r in kept for e in r.events],
                kept[0].polled_at,
            )
        return len(kept)

    def release(self, owner: str, task_ids: Sequence[str]) -> None:
        """Give up leases on tasks claimed but not polled."""
        with self._writing() as connection:
            for chunk in chunks(task_ids):
                connection.execute(
                    update(tasks)
                    .where(tasks.c.task_id.in_(chunk), tasks.c.lease_owner == owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )
            tell(connection, Topic.TASKS)  # another daemon may take them now

    def finish_timed_out(
        self,
        now: datetime,
        watched_before: datetime,
        *,
        channels: tuple[str, ...],
        provider: str | None = None,
    ) -> list[str]:
        """Finish as ``timed_out`` the unheld, unfinished tasks watched since before the cutoff
        (registered then, and not reopened since; of ``provider`` only, if given); each owes an
        event on each notification channel (tracker/core/owed.py), written in the same
        transaction."""
        statement = (
            update(tasks)
            .where(
                tasks.c.finished == false(),
                # The registration index finds the candidates; the few reopened since are
                # left out after (a reopening is always later than the registration).
                tasks.c.registered_at < watched_before,
                tasks.c.reopened_at.is_(None) | (tasks.c.reopened_at < watched_before),
                lease_free(tasks, now),
                *_of(provider),
            )
            .values(finishing(FinishReason.TIMED_OUT, now))
            .returning(*TASK_COLUMNS)
        )
        with self._writing() as connection:
            will_write_snapshots(connection)
            finished = [Task(*row) for row in connection.execute(statement)]
            mark_finished(connection, finished, now)
            tally(connection, "finished", {FinishReason.TIMED_OUT.value: len(finished)})
            owed = [
                (task.task_id, event)
                for task in finished
                for event in owed_without_poll(channels, task)
            ]
            owe(connection, self._insert_ignoring_existing, [], owed, now)
        return [task.task_id for task in finished]

    def postpone(self, pause: Pause) -> None:
        """Pause a provider's API: none of its unfinished tasks is due before the pause ends,
        and ``pauses`` says until when and why (the later end wins over a row in force), in
        one transaction."""
        with self._writing() as connection:
            connection.execute(
                update(tasks)
                .where(
                    tasks.c.finished == false(),
                    tasks.c.provider == pause.provider,
                    tasks.c.next_poll_at < pause.paused_until,
                )
                .values(next_poll_at=pause.paused_until)
            )
            # The row first exists, then is locked: daemons pausing at once queue on it.
            connection.execute(
                self._insert_ignoring_existing(pauses, ["provider"]), [_pause_row(pause)]
            )
            stored = connection.execute(
                select(*PAUSE_COLUMNS).where(pauses.c.provider == pause.provider).with_for_update()
            ).one()
            connection.execute(
                update(pauses)
                .where(pauses.c.provider == pause.provider)
                .values(_pause_row(pause_of(stored).then(pause)))
            )

    def has_unfinished(
        self, providers: Collection[str] | None = None, task_ids: Collection[str] | None = None
    ) -> bool:
        """Whether a task (of ``providers`` only, among ``task_ids`` only, if given) is
        unfinished."""
        unfinished = exists().where(tasks.c.finished == false())
        if providers is not None:
            unfinished = unfinished.where(tasks.c.provider.in_(list(providers)))
        if task_ids is not None:
            unfinished = unfinished.where(tasks.c.task_id.in_(list(task_ids)))
        with self._engine.connect() as connection:
            return bool(connection.scalar(select(unfinished)))

    def unfinished_providers(self, task_ids: Collection[str] | None = None) -> set[str]:
        """The providers that unfinished tasks (among ``task_ids``, if given) name."""
        query = select(tasks.c.provider).where(tasks.c.finished == false()).distinct()
        if task_ids is not None:
            query = query.where(tasks.c.task_id.in_(list(task_ids)))
        with self._engine.connect() as connection:
            return set(connection.scalars(query))


def finishing(reason: FinishReason, now: datetime) -> dict[str, Any]:
    """The columns of a task finished without a poll: no poll is coming, nobody holds it."""
    return {
        "finished": True,
        "finish_reason": reason.value,
        "finished_at": now,
        "next_poll_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }


def mark_finished(connection: Connection, finished: Sequence[Task], now: datetime) -> None:
    """The snapshot of a task finished without a poll (removed, or given up by the sweep), in
    the transaction that finishes it: its history, and the event stream, end with it
    (docs/tables.md). Its status and progress are the last seen; nothing else is set."""
    if finished:
        tell(connection, Topic.SNAPSHOTS)
        connection.execute(
            snapshots.insert(),
            [
                {
                    "task_id": task.task_id,
                    "polled_at": now,
                    "status": task.status,
                    "progress": task.progress,
                    "finished": True,
                    "kept": True,
                }
                for task in finished
            ],
        )
