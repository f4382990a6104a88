"""The daemon's periodic jobs, on APScheduler: the sweep that times out tasks past
give-up-after, the summary line in the log, the daily pruning.

The polling and the follow-up workers are loops of their own (woken by writes, see
``lanes`` and ``workers``); what runs here runs on a fixed period. No job per task and no job
store: a job store cannot be shared between processes, and per-task jobs do not scale to tens
of thousands of tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracker.daemon.rules import Policy

logger = logging.getLogger(__name__)


def sweep_seconds(policy: Policy) -> float:
    """How often tasks past give-up-after are looked for: a tenth of that time, within limits."""
    return min(60.0, max(1.0, policy.give_up_after / 10))


@dataclass(frozen=True)
class Job:
    name: str
    every: float
    run: Callable[[], Awaitable[Any]]
    first_after: float = 0.0


class Periodic:
    """The jobs, started and stopped with the daemon. A job that meets a slow database may
    overlap its next run, which returns at once (quieter than APScheduler's warning for a
    skipped run); at a stop the scheduler is paused first (APScheduler's
    shutdown would cancel a job mid-query), and the jobs under way get the drain time."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self._jobs = tuple(jobs)
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        now = datetime.now(UTC)
        for job in self._jobs:
            scheduler.add_job(
                self._tracked(job.run),
                "interval",
                seconds=job.every,
                id=job.name,
                coalesce=True,
                max_instances=3,
                misfire_grace_time=None,
                next_run_time=now + timedelta(seconds=job.first_after),
            )
        scheduler.start()
        self._scheduler = scheduler

    def _tracked(self, run: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            this = asyncio.current_task()
            assert this is not None
            self._running.add(this)
            try:
                await run()
            finally:
                self._running.discard(this)

        return job

    async def stop(self, timeout: float) -> None:
        if self._scheduler is None:
            return
        self._scheduler.pause()
        if self._running:
            _done, late = await asyncio.wait(set(self._running), timeout=timeout)
            for job in late:  # a pruning between two batches: the rest waits for tomorrow
                job.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._scheduler.shutdown(wait=False)
        self._scheduler = None
