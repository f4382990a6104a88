"""The event feed's reads: snapshots in the order their transactions committed, never past a
transaction that may still commit (tracker/core/feed.py, docs/http-api.md: Events).

On PostgreSQL a snapshot's place is (its writing transaction, its ID), and the watermark is the
oldest transaction still running that may write snapshots here: every row below it is committed
or never will be, so a reader that moves only below it skips nothing and sends nothing twice.
A transaction that writes snapshots takes the table's write lock before it writes anything else
(``will_write_snapshots``), so one holding that lock is a writer, and one that holds only its
own transaction's lock is not (another table's writes, another database's); a transaction the
reader cannot place either way (it ended meanwhile) counts as a writer. On SQLite every
transaction is 0 and the IDs are in commit order already.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from typing import Any

from sqlalchemy import BigInteger, func, literal, literal_column, select, tuple_
from sqlalchemy.engine import Connection

from tracker.core.feed import START, FeedItem, FeedPosition, FeedRead
from tracker.store.base import SQLStore
from tracker.store.schema import snapshots, tasks

# The first transaction still running that may write snapshots in this database, else the
# first one still to come: every transaction running now that is not known to write none.
_WATERMARK = literal_column(
    """(
    SELECT COALESCE(MIN(running.xid), pg_snapshot_xmax(pg_current_snapshot()))::text::bigint
    FROM pg_snapshot_xip(pg_current_snapshot()) AS running(xid)
    WHERE running.xid::xid NOT IN (
        SELECT own.transactionid FROM pg_locks AS own
        WHERE own.locktype = 'transactionid' AND own.mode = 'ExclusiveLock' AND own.granted
        AND NOT EXISTS (
            SELECT FROM pg_locks AS writing
            WHERE writing.virtualtransaction = own.virtualtransaction
            AND writing.locktype = 'relation'
            AND writing.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND writing.relation = 'snapshots'::regclass
        )
    )
)""",
    BigInteger(),
)


def will_write_snapshots(connection: Connection) -> None:
    """First thing in a transaction that writes snapshots, before any other write of its
    own: the feed's readers then know it for a writer (see the module's docstring)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE snapshots IN ROW EXCLUSIVE MODE")


_TASK_SIDE = frozenset({"label", "metadata", "finish_reason", "finished_at"})
_COLUMNS = [
    (tasks if field.name in _TASK_SIDE else snapshots).c[field.name] for field in fields(FeedItem)
]


class FeedStore(SQLStore):
    def _watermark(self) -> Any:
        """The first transaction whose snapshots may still commit, as SQL (SQLite: none past
        0)."""
        if self._dialect != "postgresql":
            return literal(1, BigInteger())
        return _WATERMARK

    def _order(self) -> tuple[Any, ...]:
        if self._dialect != "postgresql":
            return (snapshots.c.id,)
        return (snapshots.c.xid, snapshots.c.id)

    def _after(self, position: FeedPosition) -> Any:
        if self._dialect != "postgresql":
            return snapshots.c.id > position.id
        return tuple_(snapshots.c.xid, snapshots.c.id) > tuple_(
            literal(position.xid, BigInteger()), literal(position.id, BigInteger())
        )

    def _up_to(self, position: FeedPosition) -> Any:
        if self._dialect != "postgresql":
            return snapshots.c.id <= position.id
        return tuple_(snapshots.c.xid, snapshots.c.id) <= tuple_(
            literal(position.xid, BigInteger()), literal(position.id, BigInteger())
        )

    def head(self) -> FeedPosition:
        """The newest position nothing can come before any more: where a new reader starts."""
        order = self._order()
        query = (
            select(snapshots.c.xid, snapshots.c.id)
            .where(snapshots.c.xid < self._watermark())
            .order_by(*(column.desc() for column in order))
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return FeedPosition(int(row[0]), int(row[1])) if row is not None else START

    def read(
        self,
        after: FeedPosition,
        limit: int,
        *,
        up_to: FeedPosition | None = None,
        task_ids: Collection[str] = (),
        label: str | None = None,
    ) -> FeedRead:
        """Up to ``limit`` snapshots after ``after`` (up to ``up_to``), in the feed's order, with
        their tasks' label, metadata and end; only those below the watermark."""
        watermark = self._watermark().label("watermark")
        query = (
            select(*_COLUMNS, watermark)
            .join(tasks, tasks.c.task_id == snapshots.c.task_id)
            .where(self._after(after))
            .order_by(*self._order())
            .limit(limit)
        )
        if up_to is not None:
            query = query.where(self._up_to(up_to))
        if task_ids:
            query = query.where(snapshots.c.task_id.in_(list(task_ids)))
        if label is not None:
            query = query.where(tasks.c.label == label)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        items: list[FeedItem] = []
        for *values, below in rows:
            item = FeedItem(*values)
            if item.xid >= below:
                return FeedRead(items, held_back=True)
            items.append(item)
        return FeedRead(items, held_back=False)

    def issued(self, position: FeedPosition) -> bool:
        """Whether ``position`` can have come from this database's feed: none past its newest
        snapshot or past a transaction still running was ever sent."""
        query = select(func.max(snapshots.c.id), self._watermark())
        with self._engine.connect() as connection:
            newest, watermark = connection.execute(query).one()
        return position.id <= int(newest or 0) and position.xid < int(watermark)
