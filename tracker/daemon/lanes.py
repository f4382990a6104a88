"""One poller per provider (docs/providers.md), driven as one loop: each provider's tasks are
claimed, paused and given requests in flight on their own, so a slow or paused API holds up
its own tasks only. Tasks of a provider the configuration does not name wait, and are named
once in an ERROR line.

The loop (``run``) ticks while there is work: it writes what the polls brought, claims what is
due and starts it, as often as the shortest interval needs. With nothing to do it rests until
the earliest due time, the end of a pause or a look now and then, and a write that registers
tasks, makes one due or gives leases back ends the rest at once, in this process or, on
PostgreSQL, in any (tracker/store/wakeups.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from tracker.core.models import PassSummary
from tracker.core.pauses import Pause
from tracker.daemon.poller import Poller
from tracker.daemon.rules import Policy
from tracker.daemon.running import Crew
from tracker.store.wakeups import Signal, Topic

logger = logging.getLogger(__name__)


def tick_seconds(policy: Policy) -> float:
    """How often results are written and due tasks claimed while there is work: often enough
    that claims keep up with thousands of polls a second and lateness stays small."""
    return min(0.1, max(0.02, policy.interval / 20))


class Lanes:
    """The pollers of a daemon, one per provider, with the scheduler's view of one poller."""

    def __init__(
        self,
        pollers: Sequence[Poller],
        crew: Crew,
        unfinished_providers: Callable[[], set[str]],
        policy: Policy,
    ) -> None:
        if not pollers:
            raise ValueError("a daemon polls at least one provider")
        self.pollers = tuple(pollers)
        self._crew = crew
        self._database = crew.database
        self._unfinished_providers = unfinished_providers
        self._named: set[str] = set()  # unknown providers already said in the log
        self._period = tick_seconds(policy)
        self._news: Signal | None = None
        self._stopping = False

    async def run(
        self,
        stopping: asyncio.Event,
        after_tick: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Tick until ``stopping`` is set or a drain begins; ``after_tick`` after each."""
        with self._crew.wakeups.signal(Topic.TASKS) as news:
            self._news = news
            try:
                while not (stopping.is_set() or self._stopping):
                    news.clear()  # before the tick: news during it is not missed
                    await self.tick()
                    if after_tick is not None:
                        await after_tick()
                    if stopping.is_set() or self._stopping:
                        break
                    if await news.wait(max(self._period, self.rest_seconds())):
                        for poller in self.pollers:
                            poller.wake()
            finally:
                self._news = None

    @property
    def busy(self) -> bool:
        return any(poller.busy for poller in self.pollers)

    @property
    def held(self) -> int:
        """Tasks claimed and not yet written back: the leases held."""
        return sum(poller.held for poller in self.pollers)

    @property
    def polls(self) -> int:
        return sum(poller.polls for poller in self.pollers)

    @property
    def finished(self) -> int:
        return sum(poller.finished for poller in self.pollers)

    @property
    def database_down_since(self) -> datetime | None:
        """Since when writes have failed, in any lane (they share the database)."""
        downs = [p.health.down_since for p in self.pollers if p.health.down_since is not None]
        return min(downs) if downs else None

    async def tick(self) -> None:
        await self._each(lambda poller: poller.tick())

    async def sweep(self) -> None:
        await self._each(lambda poller: poller.sweep())
        await self.name_unknown_providers()

    async def drain(self, timeout: float) -> None:
        """Stop the loop and every poller: requests in flight get ``timeout`` seconds, then
        everything is written and what was not started given back."""
        self._stopping = True
        if self._news is not None:
            self._news.set()
        await self._each(lambda poller: poller.drain(timeout))

    async def has_unfinished(self) -> bool:
        """Whether any task of a provider polled here is unfinished (tasks of unknown
        providers wait for a configuration, not for this daemon)."""
        return any(await asyncio.gather(*(p.has_unfinished() for p in self.pollers)))

    def rest_seconds(self) -> float:
        return min(poller.rest_seconds() for poller in self.pollers)

    def poll_soon(self, task_id: str) -> None:
        """A webhook received on this loop said the task changed; the database has it due."""
        for poller in self.pollers:
            poller.poll_soon(task_id)
        if self._news is not None:
            self._news.set()

    def restore(self, pause: Pause) -> None:
        for poller in self.pollers:
            poller.pause.restore(pause)

    async def poll_pass(self, all_unfinished: bool = False) -> PassSummary:
        """Every lane's pass at once; their summaries added up (the latest pause wins)."""
        await self.name_unknown_providers()
        passes = await asyncio.gather(*(p.poll_pass(all_unfinished) for p in self.pollers))
        total = PassSummary()
        for one in passes:
            total.polled += one.polled
            total.finished += one.finished
            total.errors += one.errors
            total.unwritten += one.unwritten
            total.refused = total.refused or one.refused
            if one.paused_until is not None and (
                total.paused_until is None or one.paused_until > total.paused_until
            ):
                total.paused_until = one.paused_until
        return total

    async def name_unknown_providers(self) -> None:
        """One ERROR line for each provider that unfinished tasks name and no lane polls: their
        tasks wait, unpolled and never timed out, until a configuration names it."""
        try:
            named = await self._database.run(self._unfinished_providers)
        except Exception as exc:  # the lanes' own writes report a database that is down
            logger.debug("reading the providers of unfinished tasks failed: %s", exc)
            return
        known = {poller.provider for poller in self.pollers}
        for provider in sorted(named - known - self._named):
            logger.error(
                "unfinished tasks name the provider %r, which the configuration does not "
                "declare: they wait, unpolled, until it does (docs/providers.md)",
                provider,
            )
            self._named.add(provider)

    async def _each(self, job: Callable[[Poller], Awaitable[object]]) -> None:
        if len(self.pollers) == 1:
            await job(self.pollers[0])
        else:
            await asyncio.gather(*(job(poller) for poller in self.pollers))
