"""Claiming due tasks ahead of the free request slots, so that a slot that frees up starts its
next request without waiting for a tick (docs/performance.md), and few enough that every claim
starts well within its lease."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta

from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import ClaimedTask
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.rules import Policy
from tracker.store.polls import PollStore

# Tasks held per request slot at least: enough queued to keep every slot busy between two ticks
# while polls take milliseconds or more.
CLAIM_AHEAD = 16
# And at least this long of the lane's recent polling: at thousands of polls a second, 16 a slot
# ran out before the next tick's write and claim were through, and the slots stood idle.
AHEAD = timedelta(seconds=0.5)
# The recent polling the pace is taken over.
PACE_WINDOW = timedelta(seconds=2)


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
        self._counts: deque[tuple[datetime, int]] = deque()  # (when, polls done by then)

    def room(self, held: int, polls: int, now: datetime) -> int:
        """How many more tasks to claim at ``now`` while ``held`` are claimed and not yet
        written, the lane having done ``polls`` polls so far: its limit, or what it polls in
        ``AHEAD`` at its pace over the last ``PACE_WINDOW``, whichever is more."""
        counts = self._counts
        counts.append((now, polls))
        while len(counts) > 2 and now - counts[1][0] >= PACE_WINDOW:
            counts.popleft()
        since, polls_then = counts[0]
        span = (now - since).total_seconds()
        ahead = (polls - polls_then) * AHEAD.total_seconds() / span if span > 0 else 0.0
        return max(0, max(self.limit, round(ahead)) - held)

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
