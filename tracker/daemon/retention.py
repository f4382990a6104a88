"""Retention: `tracker prune` and `tracker run --retain`, keeping history from growing forever.

Only snapshots of finished tasks are pruned, and of those never a task's first snapshot, its
last (the one that finished it), or one whose status differs from the snapshot before it: the
story of each task survives, the repetitions of it go (the rule is written out in SQL in
``RetentionStore.prune_batch``). Work is done in short transactions that each read about
SNAPSHOTS_PER_BATCH snapshots; the daemon lets its polls through between batches.
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
    """The daemon's daily pruning, a periodic job (``tracker.daemon.scheduler``): a minute
    after the start, then every day."""

    def __init__(
        self,
        store: RetentionStore,
        keep: float,
        crew: Crew,
        *,
        first_after: float = 60.0,
        every: float = 86400.0,
    ) -> None:
        self._store = store
        self._keep = timedelta(seconds=keep)
        self._database = crew.database
        self._clock = crew.clock
        self.first_after = first_after
        self.every = every
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
