"""Reading a task's course for the dashboard: its polls without their bodies (for the chart of
progress and the timeline of statuses), and why tasks failed (their last snapshot's error)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tracker.store.base import SQLStore, chunks
from tracker.store.schema import snapshots


@dataclass(frozen=True)
class Point:
    """One poll of a task, as its chart and timeline show it: a snapshot without its body."""

    id: int
    polled_at: datetime
    http_status: int | None
    status: str | None
    progress: int | None
    error: Any


_POINT_COLUMNS = [snapshots.c[field.name] for field in fields(Point)]


class Timelines(SQLStore):
    def points(self, task_id: str) -> list[Point]:
        """Every poll of the task, oldest first, bodies left out (they are most of a
        snapshot's bytes); read through the task's history index."""
        query = (
            select(*_POINT_COLUMNS)
            .where(snapshots.c.task_id == task_id)
            .order_by(snapshots.c.polled_at, snapshots.c.id)
        )
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=2000).execute(query)
            return [Point(*row) for row in result]

    def final_errors(self, task_ids: Collection[str]) -> dict[str, Any]:
        """The error of each task's newest snapshot, for the tasks whose newest has one: what
        a failed video's API said, or why the last poll failed."""
        errors: dict[str, Any] = {}
        with self._engine.connect() as connection:
            for chunk in chunks(sorted(task_ids)):
                newest = (
                    select(func.max(snapshots.c.id))
                    .where(snapshots.c.task_id.in_(chunk))
                    .group_by(snapshots.c.task_id)
                )
                query = select(snapshots.c.task_id, snapshots.c.error).where(
                    snapshots.c.id.in_(newest), snapshots.c.error.is_not(None)
                )
                errors.update({task_id: error for task_id, error in connection.execute(query)})
        return errors
