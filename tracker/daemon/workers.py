"""Jobs beside the polling (downloads, notifications): claimed from the database a few at a
time and run side by side (``Running``, as many at once as claimed), so a slow one never holds
up another or the polls.

Each worker is a loop like the polling's: it claims while there is room and work, and rests
otherwise, until a write owes it something (a task finished, a download settled: in this
process or, on PostgreSQL, in any), a retry it scheduled comes due, or a look now and then
finds what no one announced (a dead daemon's leases running out)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from datetime import datetime
from typing import Any, Generic, TypeVar

from tracker.daemon.running import Crew, Running
from tracker.daemon.shortage import Shortage
from tracker.errors import LocalResourceError
from tracker.store.wakeups import Signal, Topic

logger = logging.getLogger(__name__)

Job = TypeVar("Job")

# While jobs run, room is looked for this often; idle, as the poller looks (its LOOK_SECONDS).
BUSY_SECONDS = 1.0
LOOK_SECONDS = 5.0
UNHEARD_LOOK_SECONDS = 1.0


class ClaimingWorker(Generic[Job]):
    """Claims due jobs and runs them, at most ``concurrency`` at once.

    A job still running is never started again, even if its lease lapsed and it was claimed
    anew; claims that land after shutdown began are not started (the daemon gives its leases
    back). Subclasses say how to claim (``_claim``), what identifies a job (``_key``) and what
    to do with one (``_run``), and tell ``_retry_at`` when they put one off. A job this machine
    has no resources for (``LocalResourceError``: no open file left) is no failed attempt: it
    waits, as a poll does, until another job ends or a second has passed, and goes again.
    """

    kind = "jobs"  # for log lines

    def __init__(self, crew: Crew, *, concurrency: int) -> None:
        self._crew = crew
        self._database = crew.database
        self._clock = crew.clock
        self._concurrency = concurrency
        self._running: Running[Hashable, Any] = Running(concurrency)
        self._claiming = asyncio.Lock()
        self._stopping = False
        self._news: Signal | None = None
        self._next_retry: datetime | None = None
        self.shortage = Shortage(crew.clock)

    @property
    def busy(self) -> bool:
        return bool(len(self._running))

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and run until ``stopping`` is set or a drain begins."""
        with self._crew.wakeups.signal(Topic.FOLLOW_UPS) as news:
            self._news = news
            try:
                while not (stopping.is_set() or self._stopping):
                    news.clear()
                    await self.tick()
                    if not (stopping.is_set() or self._stopping):
                        await news.wait(self._rest())
            finally:
                self._news = None

    def _rest(self) -> float:
        if self.busy:
            return BUSY_SECONDS
        look = LOOK_SECONDS if self._crew.wakeups.listening else UNHEARD_LOOK_SECONDS
        if self._next_retry is None:
            return look
        return min(look, max(0.0, (self._next_retry - self._clock.now()).total_seconds()))

    def _retry_at(self, when: datetime) -> None:
        """A job was put off until ``when``: the worker looks again by then."""
        if self._next_retry is None or when < self._next_retry:
            self._next_retry = when

    async def tick(self) -> None:
        room = self._concurrency - len(self._running)
        if self._stopping or room <= 0 or self._claiming.locked():
            return
        async with self._claiming:
            now = self._clock.now()
            if self._next_retry is not None and self._next_retry <= now:
                self._next_retry = None
            try:
                jobs = await self._claim(now, room)
            except Exception as exc:
                logger.warning("claiming %s failed: %s", self.kind, exc)
                return
            for job in jobs:
                if self._stopping:
                    break
                self._running.start(self._key(job), self._through_shortage(job))

    async def _through_shortage(self, job: Job) -> Any:
        while True:
            try:
                done = await self._run(job)
            except LocalResourceError as exc:
                await self.shortage.wait(exc)
            else:
                self.shortage.answered()
                return done

    async def drain(self, timeout: float) -> None:
        """Start nothing more; jobs under way get ``timeout`` seconds, then they are cancelled
        and left pending, to be done again later."""
        self._stopping = True
        if self._news is not None:
            self._news.set()
        async with self._claiming:  # a claim under way ends first
            pass
        await self._running.drain(timeout)

    async def _claim(self, now: datetime, room: int) -> list[Job]:
        raise NotImplementedError

    def _key(self, job: Job) -> Hashable:
        raise NotImplementedError

    async def _run(self, job: Job) -> Any:
        raise NotImplementedError
