"""Claiming due tasks ahead of the free request slots, so that a slot that frees up starts its
next request without waiting for a tick (docs/performance.md), and few enough that every claim
starts well within its lease."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import ClaimedTask
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.rules import Policy
from tracker.store.polls import PollStore

# Tasks claimed per request slot: enough queued to keep every slot busy between two ticks.
CLAIM_AHEAD = 16


class Claimer:
    def __init__(
        self,
        store: PollStore,
        database: DatabaseThread,
        owner: str,
        policy: Policy,
        concurrency: int,
        provider: str = DEFAULT_PROVIDER,
    ) -> None:
        self._provider = provider
        self._store = store
        self._database = database
        self._owner = owner
        self._policy = policy
        self.limit = concurrency * CLAIM_AHEAD

    def room(self, held: int) -> int:
        """How many more tasks to claim while ``held`` are claimed and not yet written."""
        return max(0, self.limit - held)

    async def claim(
        self,
        now: datetime,
        limit: int,
        *,
        include_not_due: bool = False,
        polled_before: datetime | None = None,
    ) -> Sequence[ClaimedTask]:
        return await self._database.run(
            self._store.claim_due,
            self._owner,
            now,
            now + self._policy.lease,
            limit,
            include_not_due=include_not_due,
            polled_before=polled_before,
            provider=self._provider,
        )

    def may_start(self, claimed_at: datetime, now: datetime) -> bool:
        """Whether a request may still start for a task claimed at ``claimed_at``: late ones are
        given back, so the request and the write of its result both end inside the lease."""
        return now - claimed_at <= self._policy.start_window
