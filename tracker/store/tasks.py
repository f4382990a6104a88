"""Registering and removing tasks, and making one due at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import false, select, update
from sqlalchemy.engine import Connection

from tracker.core.models import AddResult, FinishReason, NewEvent, NewTask, RemoveResult, Task
from tracker.errors import UnknownTaskError
from tracker.store.base import SQLStore, chunks
from tracker.store.follow_ups import owe
from tracker.store.polls import TASK_COLUMNS, mark_finished
from tracker.store.schema import tasks


class TaskStore(SQLStore):
    """The rows of ``tasks`` as users change them (``tracker add``, ``remove``, webhooks)."""

    def add_tasks(self, task_ids: Sequence[str], label: str | None, now: datetime) -> AddResult:
        """Register the IDs not registered yet, due at once; existing ones are left as they are."""
        return self.register([NewTask(task_id, label) for task_id in task_ids], now)

    def register(self, new_tasks: Sequence[NewTask], now: datetime) -> AddResult:
        """Register the tasks not registered yet, due at once, each with its label, metadata and
        provider; existing ones are left as they are."""
        task_ids = [task.task_id for task in new_tasks]
        with self._writing() as connection:
            existing = self._existing(connection, task_ids)
            new = [task for task in new_tasks if task.task_id not in existing]
            if new:
                statement = self._insert_ignoring_existing(tasks, ["task_id"])
                connection.execute(
                    statement,
                    [
                        {
                            "task_id": task.task_id,
                            "label": task.label,
                            "metadata": task.metadata,
                            "provider": task.provider,
                            "registered_at": now,
                            "next_poll_at": now,
                        }
                        for task in new
                    ],
                )
        return AddResult(
            added=[task.task_id for task in new], existing=[t for t in task_ids if t in existing]
        )

    def remove_tasks(
        self,
        task_ids: Sequence[str],
        now: datetime,
        events_for: Callable[[Task], Sequence[NewEvent]] | None = None,
    ) -> RemoveResult:
        """Finish the IDs as ``removed``; raise UnknownTaskError (changing nothing) if any is
        not registered. ``events_for`` gives the notifications each task it finishes owes,
        written in the same transaction."""
        with self._writing() as connection:
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
            owed: list[tuple[str, NewEvent]] = []
            for chunk in chunks(sorted(unfinished)):
                finished = connection.execute(
                    update(tasks)
                    .where(tasks.c.task_id.in_(chunk), tasks.c.finished == false())
                    .values(
                        finished=True,
                        finish_reason=FinishReason.REMOVED.value,
                        finished_at=now,
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                    .returning(*TASK_COLUMNS)
                )
                removed = [Task(*row) for row in finished]
                mark_finished(connection, removed, now)
                for task in removed:
                    if events_for is not None:
                        owed += [(task.task_id, event) for event in events_for(task)]
            owe(connection, self._insert_ignoring_existing, [], owed, now)
        return RemoveResult(
            removed=[t for t in task_ids if t in unfinished],
            already_finished=[t for t in task_ids if t not in unfinished],
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

    def _existing(self, connection: Connection, task_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(task_ids):
            found.update(
                connection.scalars(select(tasks.c.task_id).where(tasks.c.task_id.in_(chunk)))
            )
        return found
