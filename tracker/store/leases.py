"""Leases across the tables daemons claim from: who holds any, and letting a gone daemon's go."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, union, update

from tracker.store.base import SQLStore
from tracker.store.schema import downloads, outbox, tasks
from tracker.store.wakeups import Topic, tell

_LEASED = (tasks, downloads, outbox)


class LeaseStore(SQLStore):
    def lease_owners(self) -> list[str]:
        """The daemons holding leases now, expired or not."""
        owners = union(
            *(
                select(table.c.lease_owner).where(table.c.lease_owner.is_not(None))
                for table in _LEASED
            )
        )
        with self._engine.connect() as connection:
            return sorted(connection.scalars(select(owners.subquery().c.lease_owner)))

    def release_owners(self, owners: Sequence[str]) -> None:
        """Give up every lease the given daemons hold (they are known to be gone)."""
        with self._writing() as connection:
            for table in _LEASED:
                connection.execute(
                    update(table)
                    .where(table.c.lease_owner.in_(owners))
                    .values(lease_owner=None, lease_expires_at=None)
                )
            tell(connection, Topic.TASKS, Topic.FOLLOW_UPS)
