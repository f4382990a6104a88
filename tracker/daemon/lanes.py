"""One poller per provider (docs/providers.md), driven as one: each provider's tasks are
claimed, paused and given requests in flight on their own, so a slow or paused API holds up
its own tasks only. Tasks of a provider the configuration does not name wait, and are named
once in an ERROR line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from tracker.core.models import PassSummary
from tracker.core.pauses import Pause
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.poller import Poller

logger = logging.getLogger(__name__)


class Lanes:
    """The pollers of a daemon, one per provider, with the scheduler's view of one poller."""

    def __init__(
        self,
        pollers: Sequence[Poller],
        database: DatabaseThread,
        unfinished_providers: Callable[[], set[str]],
    ) -> None:
        if not pollers:
            raise ValueError("a daemon polls at least one provider")
        self.pollers = tuple(pollers)
        self._database = database
        self._unfinished_providers = unfinished_providers
        self._named: set[str] = set()  # unknown providers already said in the log

    @property
    def busy(self) -> bool:
        return any(poller.busy for poller in self.pollers)

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
        await self._each(lambda poller: poller.drain(timeout))

    async def has_unfinished(self) -> bool:
        """Whether any task of a provider polled here is unfinished (tasks of unknown
        providers wait for a configuration, not for this daemon)."""
        return any(await asyncio.gather(*(p.has_unfinished() for p in self.pollers)))

    def rest_seconds(self) -> float:
        return min(poller.rest_seconds() for poller in self.pollers)

    def wake(self) -> None:
        for poller in self.pollers:
            poller.wake()

    def when_woken(self, callback: Callable[[], None]) -> None:
        for poller in self.pollers:
            poller.when_woken(callback)

    def poll_soon(self, task_id: str) -> None:
        for poller in self.pollers:
            poller.poll_soon(task_id)

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
