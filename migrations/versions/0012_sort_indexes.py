"""Indexes for listing tasks sorted by their last poll or their progress (the overview's column
headers, ``GET /v1/tasks?sort=``), so that a page reads its own rows rather than sorting every
task: over a million tasks on PostgreSQL, 0.3 to 1 s a page without them (docs/performance.md,
Sorting the overview). Every poll writes ``last_polled_at``, and ``progress`` when it moves, so
each is one more index entry a poll writes; the same page measures that cost.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_tasks_last_polled_at_registered_at_task_id": "last_polled_at",
    "ix_tasks_progress_registered_at_task_id": "progress",
}


def upgrade() -> None:
    for name, column in INDEXES.items():
        op.create_index(name, "tasks", [column, "registered_at", "task_id"])


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="tasks")
