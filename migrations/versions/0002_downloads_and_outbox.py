"""Downloads of finished videos and the outbox of notifications (issue #6).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A literal, as in the queries: SQLite uses a partial index only for a WHERE that repeats it.
_PENDING = sa.column("state") == sa.literal_column("'pending'")


def _timestamp(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _lease() -> list[sa.Column[object]]:
    return [
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        _timestamp("lease_expires_at"),
    ]


def upgrade() -> None:
    op.create_table(
        "downloads",
        sa.Column("task_id", sa.String(length=256), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        _timestamp("downloaded_at"),
        _timestamp("expires_at"),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _timestamp("next_attempt_at", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        *_lease(),
        sa.CheckConstraint(
            "state IN ('pending', 'done', 'expired', 'failed')", name=op.f("ck_downloads_state")
        ),
        sa.CheckConstraint(
            "variant IN ('video', 'thumbnail', 'spritesheet')", name=op.f("ck_downloads_variant")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.task_id"],
            name=op.f("fk_downloads_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "variant", name=op.f("pk_downloads")),
    )
    op.create_index(
        "ix_downloads_due",
        "downloads",
        ["next_attempt_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        _timestamp("created_at", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _timestamp("next_attempt_at", nullable=False),
        _timestamp("delivered_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        *_lease(),
        sa.CheckConstraint("channel IN ('webhook', 'command')", name=op.f("ck_outbox_channel")),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'given_up')", name=op.f("ck_outbox_state")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.task_id"],
            name=op.f("fk_outbox_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.create_index("ix_outbox_task_id", "outbox", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_task_id", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_downloads_due", table_name="downloads")
    op.drop_table("downloads")
