"""An in-memory Repository, for unit tests of the poller and for embedders' own tests."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from tracker.core.models import (
    AddResult,
    ClaimedTask,
    FinishReason,
    NewEvent,
    PollRecord,
    RemoveResult,
    Snapshot,
    Task,
)
from tracker.errors import UnknownTaskError


class InMemoryRepository:
    """Implements tracker.repository.Repository with dicts; safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._snapshots: list[Snapshot] = []
        self._ids = itertools.count(1)
        #: Notifications owed, as the SQL repository's outbox would hold them.
        self.events: list[NewEvent] = []

    def add_tasks(self, task_ids: Sequence[str], label: str | None, now: datetime) -> AddResult:
        with self._lock:
            existing = [task_id for task_id in task_ids if task_id in self._tasks]
            added = [task_id for task_id in task_ids if task_id not in self._tasks]
            for task_id in added:
                self._tasks[task_id] = Task.registered(task_id, label, now)
        return AddResult(added=added, existing=existing)

    def remove_tasks(self, task_ids: Sequence[str], now: datetime) -> RemoveResult:
        with self._lock:
            unknown = [task_id for task_id in task_ids if task_id not in self._tasks]
            if unknown:
                raise UnknownTaskError(f"unknown task ID {unknown[0]!r}: nothing was removed")
            removed = [task_id for task_id in task_ids if not self._tasks[task_id].finished]
            for task_id in removed:
                self._tasks[task_id] = self._finish(self._tasks[task_id], FinishReason.REMOVED, now)
        return RemoveResult(
            removed=removed, already_finished=[t for t in task_ids if t not in removed]
        )

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
        with self._lock:
            candidates = sorted(
                (
                    task
                    for task in self._tasks.values()
                    if not task.finished
                    and (task.lease_expires_at is None or task.lease_expires_at <= now)
                    and (include_not_due or task.next_poll_at <= now)
                    and (
                        polled_before is None
                        or task.last_polled_at is None
                        or task.last_polled_at < polled_before
                    )
                ),
                key=lambda task: task.next_poll_at,
            )[:limit]
            for task in candidates:
                self._tasks[task.task_id] = replace(
                    task, lease_owner=owner, lease_expires_at=lease_until
                )
        return [
            ClaimedTask(
                task.task_id,
                task.registered_at,
                task.error_count,
                task.not_found_count,
                task.next_poll_at,
                task.status,
                task.progress,
                task.last_error,
            )
            for task in candidates
        ]

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        written = 0
        with self._lock:
            for record in records:
                task = self._tasks.get(record.task_id)
                if task is None or task.lease_owner != owner:
                    continue
                written += 1
                self.events.extend(record.events)
                video = record.fetch.video
                if record.store_snapshot:
                    self._snapshots.append(
                        Snapshot(
                            id=next(self._ids),
                            task_id=record.task_id,
                            polled_at=record.polled_at,
                            http_status=record.fetch.http_status,
                            status=video.status if video else None,
                            progress=video.progress if video else None,
                            error=record.snapshot_error,
                            body=record.fetch.body,
                            finished=record.finished,
                            latency_ms=record.fetch.latency_ms,
                        )
                    )
                if video is not None:
                    task = replace(
                        task,
                        status=video.status,
                        progress=video.progress if video.progress is not None else task.progress,
                        model=video.model or task.model,
                        seconds=video.seconds or task.seconds,
                        size=video.size or task.size,
                        created_at=video.created_at or task.created_at,
                        completed_at=video.completed_at or task.completed_at,
                        expires_at=video.expires_at or task.expires_at,
                    )
                task = replace(
                    task,
                    last_polled_at=record.polled_at,
                    next_poll_at=record.next_poll_at,
                    poll_count=task.poll_count + 1,
                    error_count=record.error_count,
                    not_found_count=record.not_found_count,
                    last_error=record.last_error,
                    lease_owner=None,
                    lease_expires_at=None,
                )
                if record.finish_reason is not None:
                    task = self._finish(task, record.finish_reason, record.polled_at)
                self._tasks[record.task_id] = task
        return written

    def release(self, owner: str, task_ids: Sequence[str]) -> None:
        with self._lock:
            for task_id in task_ids:
                task = self._tasks.get(task_id)
                if task is not None and task.lease_owner == owner:
                    self._tasks[task_id] = replace(task, lease_owner=None, lease_expires_at=None)

    def finish_timed_out(
        self,
        now: datetime,
        registered_before: datetime,
        events_for: Callable[[Task], Sequence[NewEvent]] | None = None,
    ) -> list[str]:
        with self._lock:
            expired = [
                task
                for task in self._tasks.values()
                if not task.finished
                and task.registered_at < registered_before
                and (task.lease_expires_at is None or task.lease_expires_at <= now)
            ]
            for task in expired:
                self._tasks[task.task_id] = finished = self._finish(
                    task, FinishReason.TIMED_OUT, now
                )
                if events_for is not None:
                    self.events.extend(events_for(finished))
        return [task.task_id for task in expired]

    def postpone(self, until: datetime) -> None:
        with self._lock:
            for task in list(self._tasks.values()):
                if not task.finished and task.next_poll_at < until:
                    self._tasks[task.task_id] = replace(task, next_poll_at=until)

    def lease_owners(self) -> list[str]:
        with self._lock:
            return sorted({t.lease_owner for t in self._tasks.values() if t.lease_owner})

    def release_owners(self, owners: Sequence[str]) -> None:
        with self._lock:
            for task in list(self._tasks.values()):
                if task.lease_owner in owners:
                    self._tasks[task.task_id] = replace(
                        task, lease_owner=None, lease_expires_at=None
                    )

    def has_unfinished(self) -> bool:
        with self._lock:
            return any(not task.finished for task in self._tasks.values())

    def tasks(
        self, status: str | None = None, unfinished: bool = False, limit: int | None = None
    ) -> list[Task]:
        with self._lock:
            return [
                task
                for task in sorted(self._tasks.values(), key=lambda t: (t.registered_at, t.task_id))
                if (status is None or (task.status or "").lower() == status.lower())
                and not (unfinished and task.finished)
            ][:limit]

    def history(self, task_id: str) -> list[Snapshot]:
        with self._lock:
            if task_id not in self._tasks:
                raise UnknownTaskError(f"unknown task ID {task_id!r}")
            return sorted(
                (s for s in self._snapshots if s.task_id == task_id),
                key=lambda s: (s.polled_at, s.id),
            )

    @staticmethod
    def _finish(task: Task, reason: FinishReason, now: datetime) -> Task:
        return replace(
            task,
            finished=True,
            finish_reason=reason.value,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
