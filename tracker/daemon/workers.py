"""Jobs beside the polling (downloads, notifications): claimed from the database a few at a
time and run as tasks of their own, so a slow one never holds up another or the polls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

from tracker.core.clock import Clock, SystemClock
from tracker.core.eventloop import finish_or_cancel
from tracker.daemon.dbthread import DatabaseThread

logger = logging.getLogger(__name__)

Job = TypeVar("Job")


class ClaimingWorker(Generic[Job]):
    """Claims due jobs and runs each as a task, at most ``concurrency`` at once.

    A job still running is never started again, even if its lease lapsed and it was claimed
    anew; claims that land after shutdown began are not started (the daemon gives its leases
    back). Subclasses say how to claim (``_claim``), what identifies a job (``_key``) and what
    to do with one (``_run``).
    """

    kind = "jobs"  # for log lines

    def __init__(self, *, database: DatabaseThread, clock: Clock | None, concurrency: int) -> None:
        self._database = database
        self._clock = clock or SystemClock()
        self._concurrency = concurrency
        self._running: dict[Hashable, asyncio.Task[Any]] = {}
        self._claiming = asyncio.Lock()
        self._stopping = False

    @property
    def busy(self) -> bool:
        return bool(self._running)

    async def tick(self) -> None:
        room = self._concurrency - len(self._running)
        if self._stopping or room <= 0 or self._claiming.locked():
            return
        async with self._claiming:
            try:
                jobs = await self._claim(self._clock.now(), room)
            except Exception as exc:
                logger.warning("claiming %s failed: %s", self.kind, exc)
                return
            for job in jobs:
                key = self._key(job)
                if self._stopping or key in self._running:
                    continue
                running = asyncio.create_task(self._run(job))
                self._running[key] = running
                running.add_done_callback(partial(self._forget, key))

    def _forget(self, key: Hashable, _done: asyncio.Task[Any]) -> None:
        self._running.pop(key, None)

    async def drain(self, timeout: float) -> None:
        """Start nothing more; jobs under way get ``timeout`` seconds, then they are cancelled
        and left pending, to be done again later."""
        self._stopping = True
        async with self._claiming:  # a claim under way ends first
            running = set(self._running.values())
        await finish_or_cancel(running, timeout)

    async def _claim(self, now: datetime, room: int) -> list[Job]:
        raise NotImplementedError

    def _key(self, job: Job) -> Hashable:
        raise NotImplementedError

    async def _run(self, job: Job) -> Any:
        raise NotImplementedError
