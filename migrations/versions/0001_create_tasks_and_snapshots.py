"""Create tasks and snapshots (SPEC §5).

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Compiled per dialect (finished = 0 on SQLite, finished = false on PostgreSQL), exactly as the
# claim query writes it, so both planners can use the partial index.
_UNFINISHED = sa.column("finished") == sa.false()


def _timestamp(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(length=256), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("finished", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("finish_reason", sa.String(length=16), nullable=True),
        _timestamp("registered_at", nullable=False),
        _timestamp("last_polled_at"),
        _timestamp("next_poll_at", nullable=False),
        _timestamp("finished_at"),
        sa.Column("poll_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Text(), nullable=True),
        sa.Column("size", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("completed_at"),
        _timestamp("expires_at"),
        sa.Column("not_found_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        _timestamp("lease_expires_at"),
        sa.CheckConstraint(
            "finish_reason IN ('completed', 'failed', 'not_found', 'timed_out', 'removed')",
            name=op.f("ck_tasks_finish_reason"),
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_tasks_progress")),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_tasks")),
    )
    op.create_index(
        "ix_tasks_due",
        "tasks",
        ["next_poll_at"],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_table(
        "snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.String(length=256), nullable=False),
        _timestamp("polled_at", nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("error", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("body", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("finished", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.task_id"],
            name=op.f("fk_snapshots_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    op.create_index("ix_snapshots_task_id_polled_at", "snapshots", ["task_id", "polled_at"])


def downgrade() -> None:
    op.drop_index("ix_snapshots_task_id_polled_at", table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_index("ix_tasks_due", table_name="tasks")
    op.drop_table("tasks")
