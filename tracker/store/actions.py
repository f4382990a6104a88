"""Acting on tasks people choose (docs/http-api.md, Actions): making them due at once,
reopening them, and any action on many at once (``bulk``), a batch per transaction so that
neither memory nor a transaction grows with the selection. Which task an action takes is the
rule of tracker/core/actions.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, true, update
from sqlalchemy.engine import Connection

from tracker.core.actions import REOPENABLE, Action, BulkCount, OneByOne, refusal
from tracker.core.models import NEWEST_FIRST, Position, TaskFilter
from tracker.errors import Refusal, TaskStateError, UnknownTaskError
from tracker.store.base import SQLStore, chunks
from tracker.store.feed import will_write_snapshots
from tracker.store.ordering import registered_after
from tracker.store.reads import Reads, task_conditions
from tracker.store.schema import tasks
from tracker.store.tallies import tally
from tracker.store.tasks import finish_as_removed, make_due
from tracker.store.wakeups import Topic, tell

# Tasks read and changed per transaction by a bulk action: on SQLite the write lock is held for
# one batch at a time, so a running daemon's writes wait that long at most.
BULK_BATCH = 1000
_REOPENABLE = sorted(reason.value for reason in REOPENABLE)


class TaskActions(SQLStore):
    def act(self, action: OneByOne, task_ids: Sequence[str], now: datetime) -> list[str]:
        """Poll now or reopen every one of ``task_ids``, all or nothing: an unknown one raises
        UnknownTaskError, any the action does not take TaskStateError naming each, and nothing
        is changed. The IDs changed, each once."""
        unique = list(dict.fromkeys(task_ids))
        with self._writing() as connection:
            states: dict[str, tuple[bool, str | None]] = {}
            for chunk in chunks(unique):
                rows = connection.execute(
                    select(tasks.c.task_id, tasks.c.finished, tasks.c.finish_reason)
                    .where(tasks.c.task_id.in_(chunk))
                    .with_for_update()
                )
                states.update((task_id, (finished, reason)) for task_id, finished, reason in rows)
            unknown = [task_id for task_id in unique if task_id not in states]
            if unknown:
                raise UnknownTaskError(f"unknown task ID {unknown[0]!r}: nothing was changed")
            refused: list[tuple[str, Refusal, str | None]] = []
            for task_id in unique:
                finished, reason = states[task_id]
                why = refusal(action, finished, reason)
                if why is not None:
                    refused.append((task_id, why, reason))
            if refused:
                raise TaskStateError(refused)
            self._apply(connection, action, unique, now, ())
        return unique

    def bulk(
        self,
        action: Action,
        selection: Sequence[str] | TaskFilter,
        now: datetime,
        *,
        channels: tuple[str, ...],
    ) -> BulkCount:
        """``action`` on the tasks ``selection`` names (IDs, unknown ones left out) or matches
        (a filter, as ``GET /v1/tasks`` reads it), ``BULK_BATCH`` to a transaction; tasks the
        action does not take are matched, not changed. A removed task owes its events on
        ``channels``."""
        if isinstance(selection, TaskFilter):
            return self._bulk_filtered(action, selection, now, channels)
        total = BulkCount()
        unique = list(dict.fromkeys(selection))
        for start in range(0, len(unique), BULK_BATCH):
            with self._writing() as connection:
                batch = unique[start : start + BULK_BATCH]
                known = [
                    task_id
                    for chunk in chunks(batch)
                    for task_id in connection.scalars(
                        select(tasks.c.task_id).where(tasks.c.task_id.in_(chunk))
                    )
                ]
                changed = self._apply(connection, action, known, now, channels)
            total += BulkCount(len(known), changed)
        return total

    def _bulk_filtered(
        self, action: Action, which: TaskFilter, now: datetime, channels: tuple[str, ...]
    ) -> BulkCount:
        """Newest first, a batch after the last one: the order's columns never change, so a
        task changed by one batch is never met again, whatever the action does to the match."""
        total = BulkCount()
        after: Position | None = None
        walk = Reads(self._engine).walks(which)
        while True:
            with self._writing() as connection:
                matching = task_conditions(which, self._dialect, walk_registrations=walk)
                rows = connection.execute(
                    select(tasks.c.registered_at, tasks.c.task_id)
                    .where(*matching, *registered_after(after, NEWEST_FIRST))
                    .order_by(tasks.c.registered_at.desc(), tasks.c.task_id.desc())
                    .limit(BULK_BATCH)
                ).all()
                batch = [task_id for _, task_id in rows]
                changed = self._apply(connection, action, batch, now, channels)
            total += BulkCount(len(batch), changed)
            if len(rows) < BULK_BATCH:
                return total
            after = Position(*rows[-1])

    def _apply(
        self,
        connection: Connection,
        action: Action,
        task_ids: Sequence[str],
        now: datetime,
        channels: tuple[str, ...],
    ) -> int:
        if not task_ids:
            return 0
        if action is Action.POLL:
            return make_due(connection, task_ids, now)
        if action is Action.REOPEN:
            return _reopen(connection, task_ids, now)
        will_write_snapshots(connection)
        return finish_as_removed(
            connection, task_ids, now, channels, self._insert_ignoring_existing
        )


def _reopen(connection: Connection, task_ids: Sequence[str], now: datetime) -> int:
    """Within a write transaction: the ended ones of ``task_ids`` (tracker/core/actions.py,
    REOPENABLE) are watched again, due at once, give-up-after counted from now, their history
    kept; the finished counts lose them. How many there were."""
    ended: Counter[str] = Counter()
    for chunk in chunks(task_ids):
        rows = connection.execute(
            select(tasks.c.task_id, tasks.c.finish_reason)
            .where(
                tasks.c.task_id.in_(chunk),
                tasks.c.finished == true(),
                tasks.c.finish_reason.in_(_REOPENABLE),
            )
            .with_for_update()
        ).all()
        if not rows:
            continue
        connection.execute(
            update(tasks)
            .where(tasks.c.task_id.in_([task_id for task_id, _ in rows]))
            .values(
                finished=False,
                finish_reason=None,
                finished_at=None,
                next_poll_at=now,
                reopened_at=now,
                # Counted afresh: three 404s before the reopening must not end it at the next.
                error_count=0,
                not_found_count=0,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        ended.update(reason for _, reason in rows)
    if ended:
        tally(connection, "finished", {reason: -count for reason, count in ended.items()})
        tell(connection, Topic.TASKS)
    return ended.total()
