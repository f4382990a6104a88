"""Each snapshot says whether retention may ever drop it (``kept``: a task's first snapshot, a
new status, its last); on PostgreSQL ``snapshots`` becomes a partitioned table, the kept
snapshots in a partition of their own and the rest by day, so that retention drops whole days
instead of deleting rows (docs/operating.md, Retention).

On PostgreSQL the rows are copied once into the new table (every row, in one statement: its
duration for a given size is in docs/operating.md), the snapshots written before today in one
partition that retention drops whole once all of it is old enough, and a partition a day from
today on. ``kept`` of the rows already there is what the pruning rule has always kept.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A snapshot retention never drops: first of its task, last of it, or a new status.
_KEPT = """
    SELECT id,
           position = 1 OR from_end = 1 OR finished
        OR NOT (status IS NULL AND previous IS NULL)
           AND (status IS NULL OR previous IS NULL OR status <> previous) AS kept
    FROM (
        SELECT id, finished, status,
               row_number() OVER (PARTITION BY task_id ORDER BY polled_at, id) AS position,
               row_number() OVER (PARTITION BY task_id ORDER BY polled_at DESC, id DESC)
                   AS from_end,
               lag(status) OVER (PARTITION BY task_id ORDER BY polled_at, id) AS previous
        FROM {table}
    ) AS ordered
"""
_COLUMNS = (
    "id, task_id, polled_at, http_status, status, progress, error, body, finished, latency_ms, xid"
)
DAYS_AHEAD = 7


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.add_column(
            "snapshots", sa.Column("kept", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        op.execute(
            f"UPDATE snapshots SET kept = 1 WHERE id IN "
            f"(SELECT id FROM ({_KEPT.format(table='snapshots')}) WHERE kept)"
        )
        return
    op.execute("ALTER TABLE snapshots RENAME TO snapshots_before_partitions")
    for old, new in (
        ("pk_snapshots", "pk_snapshots_before_partitions"),
        ("fk_snapshots_task_id_tasks", "fk_snapshots_before_partitions_task_id_tasks"),
    ):
        op.execute(f"ALTER TABLE snapshots_before_partitions RENAME CONSTRAINT {old} TO {new}")
    for index in ("ix_snapshots_task_id_polled_at", "ix_snapshots_xid_id"):
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_before_partitions")
    op.execute(
        """
        CREATE TABLE snapshots (
            id BIGINT NOT NULL DEFAULT nextval('snapshots_id_seq'),
            task_id VARCHAR(256) NOT NULL,
            polled_at TIMESTAMP WITH TIME ZONE NOT NULL,
            http_status INTEGER,
            status TEXT,
            progress INTEGER,
            error JSON,
            body JSON,
            finished BOOLEAN NOT NULL DEFAULT false,
            latency_ms FLOAT,
            xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
            kept BOOLEAN NOT NULL DEFAULT false,
            CONSTRAINT pk_snapshots PRIMARY KEY (id, kept, polled_at),
            CONSTRAINT fk_snapshots_task_id_tasks FOREIGN KEY (task_id)
                REFERENCES tasks (task_id) ON DELETE CASCADE
        ) PARTITION BY LIST (kept)
        """
    )
    op.execute("ALTER SEQUENCE snapshots_id_seq OWNED BY snapshots.id")
    op.execute("CREATE TABLE snapshots_kept PARTITION OF snapshots FOR VALUES IN (true)")
    op.execute(
        "CREATE TABLE snapshots_polls PARTITION OF snapshots FOR VALUES IN (false) "
        "PARTITION BY RANGE (polled_at)"
    )
    op.execute("CREATE TABLE snapshots_polls_default PARTITION OF snapshots_polls DEFAULT")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    older = op.get_bind().scalar(
        sa.text("SELECT EXISTS (SELECT FROM snapshots_before_partitions WHERE polled_at < :day)"),
        {"day": today},
    )
    if older:
        op.execute(
            f"CREATE TABLE snapshots_polls_before_{today:%Y%m%d} PARTITION OF snapshots_polls "
            f"FOR VALUES FROM (MINVALUE) TO ('{today.isoformat()}')"
        )
    for day in (today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)):
        op.execute(
            f"CREATE TABLE snapshots_polls_{day:%Y%m%d} PARTITION OF snapshots_polls "
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')"
        )
    op.execute(
        f"INSERT INTO snapshots ({_COLUMNS}, kept) "
        f"SELECT {', '.join('s.' + c.strip() for c in _COLUMNS.split(','))}, k.kept "
        "FROM snapshots_before_partitions s "
        f"JOIN ({_KEPT.format(table='snapshots_before_partitions')}) k "
        "ON k.id = s.id"
    )
    op.execute("DROP TABLE snapshots_before_partitions")
    # Built once the rows are in, each partition's at once.
    op.create_index("ix_snapshots_task_id_polled_at", "snapshots", ["task_id", "polled_at"])
    op.create_index("ix_snapshots_xid_id", "snapshots", ["xid", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("snapshots") as batch:
            batch.drop_column("kept")
        return
    op.execute("ALTER TABLE snapshots RENAME TO snapshots_partitioned")
    for old, new in (
        ("pk_snapshots", "pk_snapshots_partitioned"),
        ("fk_snapshots_task_id_tasks", "fk_snapshots_partitioned_task_id_tasks"),
    ):
        op.execute(f"ALTER TABLE snapshots_partitioned RENAME CONSTRAINT {old} TO {new}")
    for index in ("ix_snapshots_task_id_polled_at", "ix_snapshots_xid_id"):
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_partitioned")
    op.execute(
        """
        CREATE TABLE snapshots (
            id BIGINT NOT NULL DEFAULT nextval('snapshots_id_seq'),
            task_id VARCHAR(256) NOT NULL,
            polled_at TIMESTAMP WITH TIME ZONE NOT NULL,
            http_status INTEGER,
            status TEXT,
            progress INTEGER,
            error JSON,
            body JSON,
            finished BOOLEAN NOT NULL DEFAULT false,
            latency_ms FLOAT,
            xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
            CONSTRAINT pk_snapshots PRIMARY KEY (id),
            CONSTRAINT fk_snapshots_task_id_tasks FOREIGN KEY (task_id)
                REFERENCES tasks (task_id) ON DELETE CASCADE
        )
        """
    )
    op.execute("ALTER SEQUENCE snapshots_id_seq OWNED BY snapshots.id")
    op.execute(f"INSERT INTO snapshots ({_COLUMNS}) SELECT {_COLUMNS} FROM snapshots_partitioned")
    op.execute("DROP TABLE snapshots_partitioned")
    op.create_index("ix_snapshots_task_id_polled_at", "snapshots", ["task_id", "polled_at"])
    op.create_index("ix_snapshots_xid_id", "snapshots", ["xid", "id"])
