"""The tables (docs/tables.md). Migrations in ``migrations/`` must match this file (a test
checks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    func,
    literal_column,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from tracker.core.ids import DEFAULT_PROVIDER
from tracker.store.timetext import in_utc, sqlite_text

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite stores them as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = in_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    sqlite_text = staticmethod(sqlite_text)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL through the sqlite driver
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general

        def sqlite_time(value: Any) -> datetime | None:
            # The stored naive UTC text read as UTC in one parse, instead of SQLAlchemy's
            # parse and then this type's conversion: claims read two times a task.
            if value is None:
                return None
            try:
                moment = datetime.fromisoformat(value + "+00:00")
            except (TypeError, ValueError):  # not the text this type writes
                return self.process_result_value(general(value), dialect)
            # A bare date parses, but without the offset.
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

        return sqlite_time


# SQL NULL, not a JSON null, when there is nothing to store.
JSONDocument = JSON(none_as_null=True)


class RawJSON(str):
    """JSON text to store exactly as received, instead of being serialized again."""

    __slots__ = ()


def serialize_json(value: object) -> str:
    """The engines' JSON serializer: RawJSON passes through, anything else is encoded."""
    if isinstance(value, RawJSON):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(256), primary_key=True),
    Column("label", Text),
    Column("status", Text),
    Column("progress", Integer),
    Column("finished", Boolean, nullable=False, server_default=false()),
    Column("finish_reason", String(16)),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("last_polled_at", UTCDateTime),
    Column("next_poll_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("poll_count", Integer, nullable=False, server_default="0"),
    Column("error_count", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("model", Text),
    Column("seconds", Text),
    Column("size", Text),
    Column("created_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    # Consecutive 404 answers: three in a row finish the task as not_found (docs/failures.md).
    Column("not_found_count", Integer, nullable=False, server_default="0"),
    # The daemon polling the task right now, and until when its claim holds (docs/scaling.md).
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime),
    # The application's own context (a JSON object), given back wherever the task is.
    Column("metadata", JSONDocument),
    # Which configured API (and key) the task is polled on (docs/providers.md).
    Column("provider", String(64), nullable=False, server_default=DEFAULT_PROVIDER),
    # The first poll that saw the video being made (out of the queue): where the report's
    # queue time ends (docs/insights.md).
    Column("first_running_at", UTCDateTime),
    # When it was last watched again after it ended: give-up-after counts from then.
    Column("reopened_at", UTCDateTime),
    CheckConstraint(
        "finish_reason IN ('completed', 'failed', 'not_found', 'timed_out', 'removed')",
        name="finish_reason",
    ),
    CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
)

# Serves the claim of due, unfinished tasks in next_poll_at order; finished tasks stay out of it,
# so its size follows the watched tasks, not the history.
Index(
    "ix_tasks_due",
    tasks.c.next_poll_at,
    sqlite_where=tasks.c.finished == false(),
    postgresql_where=tasks.c.finished == false(),
)

# Listing newest first, all tasks, one label's or the unfinished ones, page after page.
Index("ix_tasks_registered_at_task_id", tasks.c.registered_at, tasks.c.task_id)
Index("ix_tasks_label_registered_at_task_id", tasks.c.label, tasks.c.registered_at, tasks.c.task_id)
# The status filter compares in any case; by this index a status few tasks have (or none) is as
# quick to page through as a common one.
Index(
    "ix_tasks_status_registered_at_task_id",
    func.lower(tasks.c.status),
    tasks.c.registered_at,
    tasks.c.task_id,
)
Index(
    "ix_tasks_unfinished_registered_at_task_id",
    tasks.c.registered_at,
    tasks.c.task_id,
    sqlite_where=tasks.c.finished == false(),
    postgresql_where=tasks.c.finished == false(),
)
# One label's unfinished tasks (the dashboard's common filter): without it, a label whose tasks
# are nearly all finished walks all of them to fill a page. Polls change none of its columns.
Index(
    "ix_tasks_unfinished_label_registered_at_task_id",
    tasks.c.label,
    tasks.c.registered_at,
    tasks.c.task_id,
    sqlite_where=tasks.c.finished == false(),
    postgresql_where=tasks.c.finished == false(),
)
# Lists sorted by the last poll or by progress (the overview's headers): a page read in order,
# not every task sorted. Each is written by the polls that change its column (migration 0012).
Index(
    "ix_tasks_last_polled_at_registered_at_task_id",
    tasks.c.last_polled_at,
    tasks.c.registered_at,
    tasks.c.task_id,
)
Index(
    "ix_tasks_progress_registered_at_task_id",
    tasks.c.progress,
    tasks.c.registered_at,
    tasks.c.task_id,
)
# Serves the claim of one provider's due tasks, for a fair share of the requests in flight.
Index(
    "ix_tasks_provider_due",
    tasks.c.provider,
    tasks.c.next_poll_at,
    sqlite_where=tasks.c.finished == false(),
    postgresql_where=tasks.c.finished == false(),
)


class writing_transaction(FunctionElement[int]):
    """The ID of the transaction that writes the row, for reading the event feed in commit
    order (tracker/core/feed.py); 0 on SQLite, whose writers commit one at a time."""

    type = BigInteger()
    inherit_cache = True


@compiles(writing_transaction, "postgresql")
def _postgresql_transaction(element: writing_transaction, compiler: SQLCompiler, **kw: Any) -> str:
    return "(pg_current_xact_id()::text::bigint)"


@compiles(writing_transaction)
def _no_transaction(element: writing_transaction, compiler: SQLCompiler, **kw: Any) -> str:
    return "0"


snapshots = Table(
    "snapshots",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "task_id",
        String(256),
        ForeignKey("tasks.task_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("polled_at", UTCDateTime, nullable=False),
    Column("http_status", Integer),
    Column("status", Text),
    Column("progress", Integer),
    Column("error", JSONDocument),
    Column("body", JSONDocument),
    Column("finished", Boolean, nullable=False, server_default=false()),
    Column("latency_ms", Float),
    # Rows written before migration 0006 read as transaction 0: they come first in the feed.
    Column("xid", BigInteger, nullable=False, server_default=writing_transaction()),
    # Retention never drops it: the task's first, a new status, the last (docs/tables.md). On
    # PostgreSQL the table is partitioned by it, then the rest by day (migration 0009).
    Column("kept", Boolean, nullable=False, server_default=false()),
)

Index("ix_snapshots_task_id_polled_at", snapshots.c.task_id, snapshots.c.polled_at)
# The event feed's order on PostgreSQL. SQLite's is the IDs' own: it needs none.
Index(
    "ix_snapshots_xid_id",
    snapshots.c.xid,
    snapshots.c.id,
    info={"only_on": "postgresql"},
).ddl_if(dialect="postgresql")

# A finished video's files: one row per task and variant, from pending to done,
# expired (its assets were gone before it could be fetched) or failed (the API refused it).
downloads = Table(
    "downloads",
    metadata,
    Column(
        "task_id",
        String(256),
        ForeignKey("tasks.task_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("variant", String(16), primary_key=True),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("path", Text),
    Column("size_bytes", BigInteger),
    Column("sha256", String(64)),
    Column("downloaded_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime),
    CheckConstraint("state IN ('pending', 'done', 'expired', 'failed')", name="state"),
    CheckConstraint("variant IN ('video', 'thumbnail', 'spritesheet')", name="variant"),
)
# A literal, not a bound parameter, in the index and in the queries alike: SQLite uses a partial
# index only for a query whose WHERE repeats the index's own terms.
PENDING = literal_column("'pending'", String())
Index(
    "ix_downloads_due",
    downloads.c.next_attempt_at,
    sqlite_where=downloads.c.state == PENDING,
    postgresql_where=downloads.c.state == PENDING,
)

# The outbox of notifications: written in the transaction that finishes the task,
# delivered at least once. ``event_id`` is the Standard Webhooks webhook-id, the same on retries.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "task_id",
        String(256),
        ForeignKey("tasks.task_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("channel", String(16), nullable=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("payload", JSONDocument, nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("last_error", Text),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime),
    CheckConstraint("state IN ('pending', 'delivered', 'given_up')", name="state"),
    CheckConstraint("channel IN ('webhook', 'command')", name="channel"),
)
Index(
    "ix_outbox_due",
    outbox.c.next_attempt_at,
    sqlite_where=outbox.c.state == PENDING,
    postgresql_where=outbox.c.state == PENDING,
)
Index("ix_outbox_task_id", outbox.c.task_id)

# The daemons at work on the database, each refreshing its own row every beat
# (tracker/core/daemons.py): who polls, since when, and who was lost.
daemons = Table(
    "daemons",
    metadata,
    Column("daemon_id", String(128), primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
    Column("providers", JSONDocument, nullable=False),
    Column("held", Integer, nullable=False, server_default="0"),
    Column("polls_last_minute", Integer, nullable=False, server_default="0"),
)

# Counts kept as they change (tracker/store/tallies.py): rows of deltas, added up when read
# and folded into one row per count now and then.
tallies = Table(
    "tallies",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(32), nullable=False),
    Column("delta", BigInteger, nullable=False),
)

# A provider's API paused as a whole (a rate limit, a refused token), so that every command
# and daemon knows until when and why (docs/failures.md).
pauses = Table(
    "pauses",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("paused_until", UTCDateTime, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("refusals", Integer, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("reason IN ('rate_limited', 'refused')", name="reason"),
)
