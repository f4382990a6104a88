"""Registering and removing tasks, and making one due at once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cached_property
from itertools import islice
from typing import Any

from sqlalchemy import JSON, Table, Text, bindparam, cast, false, func, select, type_coerce, update
from sqlalchemy.engine import Connection

from tracker.core.clock import Clock
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import (
    AddCount,
    AddResult,
    FinishReason,
    NewTask,
    RemoveResult,
    Task,
)
from tracker.core.owed import owed_without_poll
from tracker.errors import UnknownTaskError
from tracker.store.base import SQLStore, chunks
from tracker.store.bulk import json_elements
from tracker.store.feed import will_write_snapshots
from tracker.store.follow_ups import owe
from tracker.store.polls import TASK_COLUMNS, finishing, mark_finished
from tracker.store.schema import tasks
from tracker.store.tallies import tally
from tracker.store.wakeups import Topic, tell

# IDs written per transaction: on SQLite the write lock is held some 0.1 s at a time, so a
# running daemon's writes wait that long at most; fewer, larger batches rewrite fewer pages
# (docs/performance.md).
ADD_BATCH = 20_000


class TaskStore(SQLStore):
    """The rows of ``tasks`` as users change them (``tracker add``, ``remove``, webhooks, the
    HTTP API)."""

    def add_tasks(
        self,
        task_ids: Sequence[str],
        label: str | None,
        now: datetime,
        metadata: Any = None,
        provider: str = DEFAULT_PROVIDER,
    ) -> AddResult:
        """Register the IDs not registered yet, due at once; existing ones are left as they are."""
        return self.register(
            [NewTask(task_id, label, metadata, provider) for task_id in task_ids], now
        )

    def register(self, new_tasks: Sequence[NewTask], now: datetime) -> AddResult:
        """Register the tasks not registered yet, due at once, each with its label, metadata and
        provider; existing ones are left as they are. Tasks sharing those go in together."""
        task_ids = [task.task_id for task in new_tasks]
        with self._writing() as connection:
            existing = self._existing(connection, task_ids)
            alike: dict[tuple[str | None, str, str], list[NewTask]] = {}
            for task in new_tasks:
                if task.task_id not in existing:
                    key = (task.label, json.dumps(task.metadata, sort_keys=True), task.provider)
                    alike.setdefault(key, []).append(task)
            for group in alike.values():
                first = group[0]
                ids = [task.task_id for task in group]
                for start in range(0, len(ids), ADD_BATCH):
                    batch = ids[start : start + ADD_BATCH]
                    self._insert(
                        connection, batch, first.label, first.metadata, first.provider, now
                    )
        return AddResult(
            added=[t for t in task_ids if t not in existing],
            existing=[t for t in task_ids if t in existing],
        )

    def add_stream(
        self,
        task_ids: Iterable[str],
        label: str | None,
        metadata: Any,
        clock: Clock,
        provider: str = DEFAULT_PROVIDER,
    ) -> AddCount:
        """Register checked IDs ADD_BATCH at a time, each batch in a transaction of its own
        and registered at the time it is written; memory stays flat however many there are.
        A failure part way keeps the batches already written (adding again adds the rest)."""
        added = total = 0
        remaining = iter(task_ids)
        while batch := list(islice(remaining, ADD_BATCH)):
            with self._writing() as connection:
                added += self._insert(connection, batch, label, metadata, provider, clock.now())
            total += len(batch)
        return AddCount(added=added, existing=total - added)

    def _insert(
        self,
        connection: Connection,
        task_ids: list[str],
        label: str | None,
        metadata: Any,
        provider: str,
        now: datetime,
    ) -> int:
        """Insert the IDs not registered yet in one statement; return how many were. The IDs
        go in as one JSON array the database unpacks: a statement per row cost more than the
        database's own work. Sorted, a batch's index entries land side by side."""
        result = connection.execute(
            self._insert_statement.execution_options(preserve_rowcount=True),
            {
                "ids": json.dumps(sorted(task_ids)),
                "label": label,
                "now": now,
                "metadata": metadata,
                "provider": provider,
            },
        )
        if result.rowcount:
            tell(connection, Topic.TASKS)
        return int(result.rowcount)

    @cached_property
    def _insert_statement(self) -> Any:
        if self._dialect == "sqlite":
            unpacked = json_elements("ids")
        else:
            ids = bindparam("ids", type_=Text())
            unpacked = func.json_array_elements_text(cast(ids, JSON)).table_valued("value")
        # PostgreSQL needs the parameters' types in a SELECT list; SQLite's CAST would change
        # how a value is stored, so there the type only says how to convert it.
        typed = type_coerce if self._dialect == "sqlite" else cast

        def column(name: str, parameter: str | None = None) -> Any:
            kind = tasks.c[name].type
            return typed(bindparam(parameter or name, type_=kind), kind)

        rows = select(
            unpacked.c.value,
            column("label"),
            column("registered_at", "now"),
            column("next_poll_at", "now"),
            column("metadata"),
            column("provider"),
        ).where(
            # Also what SQLite needs to read ON CONFLICT after INSERT … SELECT as an upsert.
            unpacked.c.value.is_not(None)
        )
        columns = ["task_id", "label", "registered_at", "next_poll_at", "metadata", "provider"]
        return self._insert_ignoring_existing(tasks, ["task_id"]).from_select(columns, rows)

    def remove_tasks(
        self,
        task_ids: Sequence[str],
        now: datetime,
        *,
        channels: tuple[str, ...],
    ) -> RemoveResult:
        """Finish the IDs as ``removed``; raise UnknownTaskError (changing nothing) if any is
        not registered. Each task it finishes owes an event on each notification channel
        (tracker/core/owed.py), written in the same transaction."""
        with self._writing() as connection:
            will_write_snapshots(connection)
            unfinished: set[str] = set()
            known: set[str] = set()
            for chunk in chunks(task_ids):
                for task_id, finished in connection.execute(
                    select(tasks.c.task_id, tasks.c.finished).where(tasks.c.task_id.in_(chunk))
                ):
                    known.add(task_id)
                    if not finished:
                        unfinished.add(task_id)
            unknown = [task_id for task_id in task_ids if task_id not in known]
            if unknown:
                raise UnknownTaskError(f"unknown task ID {unknown[0]!r}: nothing was removed")
            finish_as_removed(
                connection, sorted(unfinished), now, channels, self._insert_ignoring_existing
            )
        return RemoveResult(
            removed=[t for t in task_ids if t in unfinished],
            already_finished=[t for t in task_ids if t not in unfinished],
        )

    def poll_now(self, task_id: str, now: datetime) -> bool:
        """Make an unfinished task due at once (a webhook said it changed)."""
        with self._writing() as connection:
            return bool(make_due(connection, [task_id], now))

    def _existing(self, connection: Connection, task_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(task_ids):
            found.update(
                connection.scalars(select(tasks.c.task_id).where(tasks.c.task_id.in_(chunk)))
            )
        return found


def finish_as_removed(
    connection: Connection,
    task_ids: Sequence[str],
    now: datetime,
    channels: tuple[str, ...],
    insert_ignoring_existing: Callable[[Table, list[str]], Any],
) -> int:
    """Within a transaction that called ``will_write_snapshots``: finish the unfinished ones of
    ``task_ids`` as ``removed``, each with its last snapshot, its tally and the events it owes
    on ``channels``, as any finished task does (tracker/core/owed.py); how many it finished."""
    count = 0
    for chunk in chunks(task_ids):
        finished = connection.execute(
            update(tasks)
            .where(tasks.c.task_id.in_(chunk), tasks.c.finished == false())
            .values(finishing(FinishReason.REMOVED, now))
            .returning(*TASK_COLUMNS)
        )
        removed = [Task(*row) for row in finished]
        mark_finished(connection, removed, now)
        tally(connection, "finished", {FinishReason.REMOVED.value: len(removed)})
        owed = [
            (task.task_id, event) for task in removed for event in owed_without_poll(channels, task)
        ]
        owe(connection, insert_ignoring_existing, [], owed, now)
        count += len(removed)
    return count


def make_due(connection: Connection, task_ids: Sequence[str], now: datetime) -> int:
    """Within a write transaction: the unfinished ones of ``task_ids`` are due at once, and the
    daemons are told; how many there were."""
    count = 0
    for chunk in chunks(task_ids):
        result = connection.execute(
            update(tasks)
            .where(tasks.c.task_id.in_(chunk), tasks.c.finished == false())
            .values(next_poll_at=now)
            .execution_options(preserve_rowcount=True)
        )
        count += int(result.rowcount)
    if count:
        tell(connection, Topic.TASKS)
    return count
