"""The long-lived daemon: APScheduler drives the poller's ticks until told to stop.

The database decides what is due, so the scheduler carries only a few fixed jobs: a short tick
that claims and polls due tasks, a sweep that times out tasks past give-up-after, and a periodic
summary in the log. No job per task and no job store: a job store cannot be shared between
processes, and per-task jobs do not scale to tens of thousands of tasks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracker.daemon.lanes import Lanes
from tracker.daemon.rules import Policy

logger = logging.getLogger(__name__)

# Requests still running at shutdown get this long to answer; with the final write (at most the
# SQLite busy timeout) that keeps the exit within the 10 seconds docs/failures.md promises.
DRAIN_SECONDS = 3.0
SUMMARY_SECONDS = 60.0
WORKER_SECONDS = 1.0


def tick_seconds(policy: Policy) -> float:
    """How often results are written and due tasks claimed: often enough that claims keep up
    with thousands of polls a second and lateness stays small. An idle tick asks nothing of the
    database: the poller waits for the earliest due time, looking at most once a second."""
    return min(0.1, max(0.02, policy.interval / 20))


def sweep_seconds(policy: Policy) -> float:
    """How often tasks past give-up-after are looked for: a tenth of that time, within limits."""
    return min(60.0, max(1.0, policy.give_up_after / 10))


class Worker(Protocol):
    """A job beside the polling: downloads, notifications."""

    @property
    def busy(self) -> bool: ...

    async def tick(self) -> None: ...

    async def drain(self, timeout: float) -> None: ...


async def run_daemon(
    poller: Lanes,
    policy: Policy,
    *,
    until_done: bool = False,
    stop: asyncio.Event | None = None,
    handle_signals: bool = False,
    workers: Sequence[Worker] = (),
    owed: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Poll until ``stop`` is set, a signal arrives (with ``handle_signals``), or, with
    ``until_done``, no unfinished task is left and ``owed`` says no download or notification
    is; then finish what is in flight and return. ``workers`` tick every second."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    last_summary = [0]

    async def done() -> bool:
        if poller.busy or any(worker.busy for worker in workers):
            return False
        if await poller.has_unfinished():
            return False
        return owed is None or not await owed()

    ticking: set[asyncio.Task[Any]] = set()
    period = tick_seconds(policy)

    async def tick() -> None:
        this = asyncio.current_task()
        assert this is not None
        ticking.add(this)
        try:
            await poller.tick()
            if until_done and not stop.is_set() and await done():
                logger.info("no unfinished task left, nothing owed")
                stop.set()
            # Idle, the next tick comes when there is something to do (at most a second away,
            # or at once when woken): an idle daemon costs next to nothing.
            rest = poller.rest_seconds()
            if rest > period and not stop.is_set():
                scheduler.modify_job("tick", next_run_time=_after(rest))
        finally:
            ticking.discard(this)

    def tick_now() -> None:
        if scheduler.running and not stop.is_set():
            scheduler.modify_job("tick", next_run_time=_after(0))

    def summary() -> None:
        polls = poller.polls - last_summary[0]
        last_summary[0] = poller.polls
        logger.info(
            "%d polls in the last %gs; %d tasks finished since start",
            polls,
            SUMMARY_SECONDS,
            poller.finished,
        )

    now = datetime.now(UTC)
    scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
    # Jobs that meet a slow database may overlap; the poller's jobs return at once when another
    # one is running, which is quieter than APScheduler's warning for each skipped run.
    common = {
        "coalesce": True,
        "max_instances": 3,
        "misfire_grace_time": None,
        "next_run_time": now,
    }
    scheduler.add_job(tick, "interval", seconds=period, id="tick", **common)
    scheduler.add_job(poller.sweep, "interval", seconds=sweep_seconds(policy), id="sweep", **common)
    for index, worker in enumerate(workers):
        scheduler.add_job(
            worker.tick, "interval", seconds=WORKER_SECONDS, id=f"worker-{index}", **common
        )
    scheduler.add_job(
        summary,
        "interval",
        seconds=SUMMARY_SECONDS,
        id="summary",
        coalesce=True,
        misfire_grace_time=None,
    )
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for signum in signals:
        loop.add_signal_handler(signum, _stop_on_signal, stop, signum)
    poller.when_woken(tick_now)
    scheduler.start()
    logger.info("polling every %gs", policy.interval)
    try:
        await stop.wait()
    finally:
        # Pause, not shut down, first: APScheduler's shutdown cancels the jobs still running,
        # and a tick cancelled between claiming and polling would leave its claims held.
        scheduler.pause()
        for signum in signals:
            loop.remove_signal_handler(signum)
        await asyncio.gather(
            poller.drain(DRAIN_SECONDS), *(worker.drain(DRAIN_SECONDS) for worker in workers)
        )
        # Ticks still checking whether work is left end first: APScheduler's shutdown would
        # cancel them mid-query.
        if ticking:
            await asyncio.wait(set(ticking), timeout=DRAIN_SECONDS)
        scheduler.shutdown(wait=False)
        logger.info("stopped after %d polls", poller.polls)


def _after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _stop_on_signal(stop: asyncio.Event, signum: int) -> None:
    logger.info("%s received: finishing the polls in flight", signal.Signals(signum).name)
    stop.set()
