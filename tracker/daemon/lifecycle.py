"""One owner of a process's life, for ``tracker run`` and ``tracker serve`` alike: it starts
the parts, installs the signal handlers (and puts the previous ones back at the end), waits for
the stop, and drains everything within a bounded time (docs/failures.md: a stop).

The parts are of two kinds. Loops run until the stop (the polling, each follow-up worker) and
are drained: what is under way gets ``DRAIN_SECONDS`` to finish, is written, and what was not
started is given back. Services are started and stopped (the HTTP service, the periodic jobs).
Beside them the lifecycle keeps the connection that hears other processes' writes
(tracker/store/wakeups.py). A second SIGINT or SIGTERM while draining stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Protocol

from tracker.store.wakeups import Wakeups

logger = logging.getLogger(__name__)

# Requests still running at a stop get this long to answer; with the final write (at most the
# SQLite busy timeout) that keeps the exit within the 10 seconds docs/failures.md promises.
DRAIN_SECONDS = 3.0
# With a condition to stop on (``run --until-done``), it is checked this often while idle.
DONE_CHECK_SECONDS = 0.25
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Loop(Protocol):
    """A part that works until the stop: the polling, a follow-up worker."""

    @property
    def busy(self) -> bool: ...

    async def run(self, stopping: asyncio.Event) -> None: ...

    async def drain(self, timeout: float) -> None: ...


class Service(Protocol):
    """A part started with the process and stopped with it: the HTTP service, the periodic
    jobs."""

    async def start(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...


class Lifecycle:
    def __init__(
        self,
        wakeups: Wakeups,
        *,
        loops: Sequence[Loop] = (),
        services: Sequence[Service] = (),
        done: Callable[[], Awaitable[bool]] | None = None,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        """``done``, if given, is asked whenever no loop is busy: the lifecycle stops by itself
        once it says so."""
        self._wakeups = wakeups
        self._loops = tuple(loops)
        self._services = tuple(services)
        self._done = done
        self._drain_seconds = drain_seconds
        self.stopping = asyncio.Event()
        self._forced = asyncio.Event()

    @property
    def busy(self) -> bool:
        return any(loop.busy for loop in self._loops)

    def stop(self) -> None:
        self.stopping.set()

    async def serve(
        self,
        *,
        stop: asyncio.Event | None = None,
        handle_signals: bool = False,
        started: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Start, run until ``stop`` (or this lifecycle's own ``stop``, or a signal with
        ``handle_signals``), then drain and stop everything. ``started`` is awaited once every
        part runs."""
        if stop is not None:
            self.stopping = stop
        with self._signals_captured(handle_signals):
            listening = asyncio.create_task(self._wakeups.listen())
            running: list[Service] = []
            loops: list[asyncio.Task[None]] = []
            try:
                for service in self._services:
                    await service.start()
                    running.append(service)
                loops = [asyncio.create_task(loop.run(self.stopping)) for loop in self._loops]
                if started is not None:
                    await started()
                await self._until_stopped(loops)
            finally:
                await self._shutdown(running, loops)
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)

    async def _until_stopped(self, loops: list[asyncio.Task[None]]) -> None:
        """Until the stop (or ``done``); a loop that ends by itself before it ended with a bug:
        raised."""
        stopped = asyncio.ensure_future(self.stopping.wait())
        try:
            while not stopped.done():
                await asyncio.wait(
                    {stopped, *loops},
                    timeout=DONE_CHECK_SECONDS if self._done is not None else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if any(loop.done() for loop in loops):
                    break
                if self._done is not None and not self.busy and await self._is_done():
                    logger.info("no unfinished task left, nothing owed")
                    break
        finally:
            stopped.cancel()
        for loop in loops:
            if loop.done() and not loop.cancelled() and loop.exception() is not None:
                raise loop.exception()  # type: ignore[misc]

    async def _is_done(self) -> bool:
        """``done``, where a database that cannot say (a connection lost, a lock) means not
        yet: the loops report its trouble, and it is asked again in a moment."""
        assert self._done is not None
        try:
            return await self._done()
        except Exception as exc:
            logger.debug("whether the work is done could not be read: %s", exc)
            return False

    async def _shutdown(self, services: list[Service], loops: list[asyncio.Task[None]]) -> None:
        self.stopping.set()
        timeout = self._drain_seconds
        drains: list[asyncio.Future[None]] = [
            *(asyncio.ensure_future(loop.drain(timeout)) for loop in self._loops),
            *(asyncio.ensure_future(service.stop(timeout)) for service in reversed(services)),
        ]
        every = asyncio.ensure_future(_all(drains))
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            await asyncio.wait({every, forced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
            every.cancel()
        for drain in drains:
            drain.cancel()  # a second signal: what is not done yet is left as it is
        for outcome in await asyncio.gather(*drains, return_exceptions=True):
            if isinstance(outcome, Exception):
                logger.error("stopping failed: %s", outcome, exc_info=outcome)
        if loops:
            _done, late = await asyncio.wait(loops, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    @contextlib.contextmanager
    def _signals_captured(self, handle: bool) -> Iterator[None]:
        """SIGTERM and SIGINT stop this lifecycle while it runs; the handlers there were
        before are put back after."""
        if not handle:
            yield
            return
        loop = asyncio.get_running_loop()
        previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self._signalled, signum)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                loop.remove_signal_handler(signum)
                signal.signal(signum, handler)

    def _signalled(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stopping.is_set():
            logger.warning("%s received again: stopping without waiting", name)
            self._forced.set()
            return
        logger.info("%s received: finishing the work under way", name)
        self.stopping.set()


async def _all(futures: Sequence[asyncio.Future[None]]) -> None:
    if futures:
        await asyncio.wait(futures)
