"""Retention: `tracker prune` and `tracker run --retain`, keeping history from growing forever.

Never a task's first snapshot, its last (the one that finished it), or one whose status
differs from the snapshot before it: the story of each task survives, the repetitions of it go.
On SQLite only finished tasks are pruned, the rule written out in SQL in
``RetentionStore.prune_batch``, in short transactions that each read about SNAPSHOTS_PER_BATCH
snapshots, the daemon letting its polls through between batches. On PostgreSQL each snapshot
says as it is written whether the rule keeps it, and whole days of the others are dropped
(``tracker.store.partitions``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from tracker.daemon.running import Crew
from tracker.store.prune import RetentionStore

logger = logging.getLogger(__name__)

# Small enough that a batch's transaction never holds polls' writes back for long.
SNAPSHOTS_PER_BATCH = 20_000


def prune(store: RetentionStore, older_than: datetime, dry_run: bool = False) -> int:
    """Prune (or count, with ``dry_run``) every prunable snapshot older than ``older_than``."""
    total, after = 0, None
    while True:
        count, after = store.prune_batch(older_than, after, SNAPSHOTS_PER_BATCH, dry_run)
        total += count
        if after is None:
            return total


class Retention:
    """The daemon's pruning, a periodic job (``tracker.daemon.scheduler``): a minute after the
    start, then every day, or every hour where it drops whole days (a day left because the
    table was busy goes within the hour)."""

    def __init__(
        self,
        store: RetentionStore,
        keep: float,
        crew: Crew,
        *,
        first_after: float = 60.0,
        every: float | None = None,
    ) -> None:
        self._store = store
        self._keep = timedelta(seconds=keep)
        self._database = crew.database
        self._clock = crew.clock
        self.first_after = first_after
        self.every = every or (3600.0 if store.by_days else 86400.0)
        self.pruned = 0

    async def prune(self) -> None:
        older_than = self._clock.now() - self._keep
        began, total, after = time.monotonic(), 0, None
        try:
            while True:
                count, after = await self._database.run(
                    self._store.prune_batch, older_than, after, SNAPSHOTS_PER_BATCH, False
                )
                total += count
                if after is None:
                    break
                await asyncio.sleep(0.05)  # the polls' writes go first
        except Exception as exc:
            logger.warning("pruning failed: %s; tried again tomorrow", exc)
        self.pruned += total
        logger.info(
            "pruned %d snapshots older than %s in %.1fs",
            total,
            older_than.isoformat(timespec="seconds"),
            time.monotonic() - began,
        )
