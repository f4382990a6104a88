"""What the Insights page draws beside the report (docs/insights.md): the tasks of a window that
finished each hour, and why the failed ones failed (the error of their last snapshot, read for
those tasks only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tracker.core.models import FinishReason
from tracker.core.report import FailureReason, HourFinishes, ReportQuery
from tracker.store.base import SQLStore
from tracker.store.report import hour_start, in_window, utc_hour
from tracker.store.schema import snapshots, tasks

_COMPLETED = tasks.c.finish_reason == FinishReason.COMPLETED.value
_FAILED = tasks.c.finish_reason == FinishReason.FAILED.value


class Insights(SQLStore):
    def finishes_by_hour(self, query: ReportQuery) -> list[HourFinishes]:
        """Of the tasks registered in the window, those that completed or failed, by the UTC
        hour they finished in, oldest first; hours without any are left out."""
        hour = utc_hour(tasks.c.finished_at)
        statement = (
            select(hour, func.count().filter(_COMPLETED), func.count().filter(_FAILED))
            .where(*in_window(query), _COMPLETED | _FAILED)
            .group_by(hour)
            .order_by(hour)
        )
        with self._engine.connect() as connection:
            return [
                HourFinishes(hour_start(text), completed, failed)
                for text, completed, failed in connection.execute(statement)
            ]

    def failure_reasons(self, query: ReportQuery, limit: int = 10) -> list[FailureReason]:
        """The ``limit`` most frequent reasons the window's failed tasks failed for: the code
        and message of the error in each one's last snapshot (None where it had none, or no
        snapshot)."""
        # Each failed task's newest snapshot, found along its history index.
        history = snapshots.alias("history")
        newest = (
            select(history.c.id)
            .where(history.c.task_id == tasks.c.task_id)
            .order_by(history.c.polled_at.desc(), history.c.id.desc())
            .limit(1)
            .correlate(tasks)
            .scalar_subquery()
        )
        last = (
            select(snapshots.c.error)
            .select_from(tasks.outerjoin(snapshots, snapshots.c.id == newest))
            .where(*in_window(query), _FAILED)
            .subquery()
        )
        code = last.c.error["code"].as_string()
        message = last.c.error["message"].as_string()
        statement = (
            select(code, message, func.count())
            .group_by(code, message)
            .order_by(func.count().desc())
            .limit(limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [
            FailureReason(_text(code_), _text(message_), count) for code_, message_, count in rows
        ]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
