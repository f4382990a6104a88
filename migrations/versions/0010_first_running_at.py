"""When the first poll saw each task's video being made (out of the queue, not finished), so that
the report's queue time is read from ``tasks`` alone (docs/insights.md).

Existing tasks get it from their snapshots: the earliest one whose status is running. The polls
write it from then on.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tracker.core.video import NOT_RUNNING_STATUSES

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("first_running_at", sa.DateTime(timezone=True)))
    tasks = sa.table(
        "tasks", sa.column("task_id"), sa.column("poll_count"), sa.column("first_running_at")
    )
    snapshots = sa.table(
        "snapshots", sa.column("task_id"), sa.column("polled_at"), sa.column("status")
    )
    # The task's history index read in order, stopping at the first running status.
    first_running = (
        sa.select(snapshots.c.polled_at)
        .where(
            snapshots.c.task_id == tasks.c.task_id,
            snapshots.c.status.is_not(None),
            sa.func.lower(sa.func.trim(snapshots.c.status)).not_in(sorted(NOT_RUNNING_STATUSES)),
        )
        .order_by(snapshots.c.polled_at)
        .limit(1)
        .scalar_subquery()
    )
    # A task never polled has no snapshot to read.
    op.execute(tasks.update().where(tasks.c.poll_count > 0).values(first_running_at=first_running))


def downgrade() -> None:
    # Not in batch mode: SQLite's copy of the table would lose the index on lower(status),
    # which it cannot reflect. SQLite drops an unindexed column in place since 3.35.
    op.drop_column("tasks", "first_running_at")
