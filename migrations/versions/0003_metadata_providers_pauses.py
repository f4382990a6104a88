"""Tasks carry their application's metadata and their provider; pauses of a provider's API are
stored with their reason; indexes for listing newest first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A literal, as in the queries: SQLite uses a partial index only for a WHERE that repeats it.
_UNFINISHED = sa.column("finished") == sa.false()


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("metadata", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(
            sa.Column("provider", sa.String(length=64), server_default="default", nullable=False)
        )
    op.create_index("ix_tasks_registered_at_task_id", "tasks", ["registered_at", "task_id"])
    op.create_index(
        "ix_tasks_label_registered_at_task_id", "tasks", ["label", "registered_at", "task_id"]
    )
    op.create_index(
        "ix_tasks_unfinished_registered_at_task_id",
        "tasks",
        ["registered_at", "task_id"],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_index(
        "ix_tasks_provider_due",
        "tasks",
        ["provider", "next_poll_at"],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )
    op.create_table(
        "pauses",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("refusals", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("reason IN ('rate_limited', 'refused')", name=op.f("ck_pauses_reason")),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_pauses")),
    )


def downgrade() -> None:
    op.drop_table("pauses")
    op.drop_index("ix_tasks_provider_due", table_name="tasks")
    op.drop_index("ix_tasks_unfinished_registered_at_task_id", table_name="tasks")
    op.drop_index("ix_tasks_label_registered_at_task_id", table_name="tasks")
    op.drop_index("ix_tasks_registered_at_task_id", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("provider")
        batch.drop_column("metadata")
