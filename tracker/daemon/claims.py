"""Claiming due tasks ahead of the free request slots, so that a slot that frees up starts its
next request without waiting for a tick (docs/performance.md), and few enough that every claim
starts well within its lease."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime

from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import ClaimedTask
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.rules import Policy
from tracker.store.polls import PollStore

# Tasks held per request slot at least: enough queued to keep every slot busy between two ticks
# while polls take milliseconds or more.
CLAIM_AHEAD = 16
# And at least what the lane polls in this many seconds at its pace: at thousands of polls a
# second, 16 a slot ran out before the next tick's write and claim were through, and the slots
# stood idle (docs/performance.md).
AHEAD_SECONDS = 0.5
# The pace is taken over this many seconds of the lane's recent polling.
PACE_SECONDS = 2.0


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
        self._counts: deque[tuple[float, int]] = deque()  # (when, polls done by then)

    def room(self, held: int, polls: int, now: float) -> int:
        """How many more tasks to claim while ``held`` are claimed and not yet written, the
        lane having done ``polls`` polls by ``now`` (monotonic seconds), which is noted for its
        pace: its limit, or what it polls in ``AHEAD_SECONDS`` at its pace over the last
        ``PACE_SECONDS``, whichever is more (the limit until notes span ``AHEAD_SECONDS``)."""
        counts = self._counts
        counts.append((now, polls))
        while now - counts[0][0] > PACE_SECONDS:
            counts.popleft()
        since, polls_then = counts[0]
        span = now - since
        ahead = (polls - polls_then) * AHEAD_SECONDS / span if span >= AHEAD_SECONDS else 0.0
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
