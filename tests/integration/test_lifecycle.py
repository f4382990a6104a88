"""The lifecycle that runs `tracker run` and `tracker serve`: real signals to this process stop
it, the handlers there were before are put back, a second signal does not wait for the drain,
the drain is bounded, and a loop that fails stops the rest and is raised."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from tracker.daemon.lifecycle import Lifecycle
from tracker.store.engine import create_engine
from tracker.store.wakeups import Wakeups


class Loop:
    """Runs until the stop; its drain takes ``drain_for`` seconds unless cut short."""

    busy = False

    def __init__(self, drain_for: float = 0.0, fail: bool = False) -> None:
        self.drain_for = drain_for
        self.fail = fail
        self.drained = False
        self.finished_draining = False

    async def run(self, stopping: asyncio.Event) -> None:
        if self.fail:
            raise RuntimeError("a bug in a loop")
        await stopping.wait()

    async def drain(self, timeout: float) -> None:
        self.drained = True
        await asyncio.sleep(min(self.drain_for, timeout))
        self.finished_draining = True


@pytest.fixture
def wakeups() -> Wakeups:
    """Nothing to hear from other processes (SQLite's): the lifecycle runs its parts alone."""
    return Wakeups(create_engine("sqlite://"))


@pytest.fixture
def own_handlers() -> Iterator[list[int]]:
    """SIGTERM and SIGINT handlers of the test's own, restored afterwards."""
    caught: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for signum in before:
        signal.signal(signum, handler)
    yield caught
    for signum, previous in before.items():
        signal.signal(signum, previous)


def test_a_signal_stops_it_and_the_handlers_before_are_put_back(
    wakeups: Wakeups, own_handlers: list[int]
) -> None:
    ours = signal.getsignal(signal.SIGTERM)
    loop = Loop()

    async def main() -> None:
        lifecycle = Lifecycle(wakeups, loops=[loop])

        async def started() -> None:
            asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), signal.SIGTERM)

        await lifecycle.serve(handle_signals=True, started=started)

    asyncio.run(asyncio.wait_for(main(), 10))
    assert loop.drained and loop.finished_draining
    assert own_handlers == []  # the signal went to the lifecycle, not to the handler before
    assert signal.getsignal(signal.SIGTERM) is ours
    assert signal.getsignal(signal.SIGINT) is ours
    os.kill(os.getpid(), signal.SIGTERM)
    assert own_handlers == [signal.SIGTERM]


def test_a_second_signal_does_not_wait_for_the_drain(
    wakeups: Wakeups, own_handlers: list[int]
) -> None:
    loop = Loop(drain_for=30.0)

    async def main() -> float:
        lifecycle = Lifecycle(wakeups, loops=[loop], drain_seconds=20.0)
        kill = os.kill
        pid = os.getpid()

        async def started() -> None:
            later = asyncio.get_running_loop().call_later
            later(0.1, kill, pid, signal.SIGTERM)
            later(0.5, kill, pid, signal.SIGINT)

        began = time.monotonic()
        await lifecycle.serve(handle_signals=True, started=started)
        return time.monotonic() - began

    took = asyncio.run(asyncio.wait_for(main(), 10))
    assert loop.drained and not loop.finished_draining
    assert took < 3.0


def test_the_drain_is_bounded(wakeups: Wakeups) -> None:
    loop = Loop(drain_for=30.0)

    async def main() -> float:
        stop = asyncio.Event()
        lifecycle = Lifecycle(wakeups, loops=[loop], drain_seconds=0.5)

        async def started() -> None:
            stop.set()

        began = time.monotonic()
        await lifecycle.serve(stop=stop, started=started)
        return time.monotonic() - began

    assert asyncio.run(main()) < 3.0
    assert loop.finished_draining  # cut at the drain time, as the loop was asked


def test_a_loop_that_fails_stops_the_others_and_is_raised(wakeups: Wakeups) -> None:
    steady = Loop()

    async def main() -> None:
        await Lifecycle(wakeups, loops=[steady, Loop(fail=True)]).serve()

    with pytest.raises(RuntimeError, match="a bug in a loop"):
        asyncio.run(asyncio.wait_for(main(), 10))
    assert steady.drained


def test_a_done_condition_that_cannot_be_read_is_asked_again(wakeups: Wakeups) -> None:
    """`run --until-done` whose question fails (the database's connections killed) goes on
    and stops once it can be answered, rather than ending with the error."""
    answers: list[bool | Exception] = [RuntimeError("connection killed"), False, True]

    async def done() -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def main() -> None:
        await Lifecycle(wakeups, loops=[Loop()], done=done).serve()

    asyncio.run(asyncio.wait_for(main(), 10))
    assert answers == []
