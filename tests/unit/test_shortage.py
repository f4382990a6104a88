"""Requests short of local resources: the ERROR line at most every 30 s, and turns given as
requests end, longest waiter first (tracker.daemon.shortage)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.doubles import FakeClock
from tracker.daemon.shortage import RETRY_SECONDS, Shortage
from tracker.errors import LocalResourceError

EMFILE = LocalResourceError("no connection to api:443 could be opened: Too many open files")


def test_the_shortage_is_said_once_per_half_minute_however_often_it_recurs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many requests short within 30 s: one ERROR line; 30 s later, one more with the count."""
    clock = FakeClock()
    shortage = Shortage(clock)

    async def scenario() -> None:
        waits = [asyncio.create_task(shortage.wait(EMFILE)) for _ in range(5)]
        await asyncio.sleep(0)
        for _ in waits:
            shortage.answered()
        await asyncio.gather(*waits)
        clock.advance(29)
        waiting = asyncio.create_task(shortage.wait(EMFILE))
        await asyncio.sleep(0)
        shortage.answered()
        await waiting
        clock.advance(1)
        waiting = asyncio.create_task(shortage.wait(EMFILE))
        await asyncio.sleep(0)
        shortage.answered()
        await waiting

    with caplog.at_level(logging.ERROR, logger="tracker.daemon.shortage"):
        asyncio.run(scenario())
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert all("Too many open files" in line and "not failed" in line for line in lines)
    assert "(7 delayed so far)" in lines[1]


def test_a_request_that_ends_gives_its_turn_to_the_longest_waiter() -> None:
    """Each answered request wakes exactly one waiter, in the order they began to wait."""
    shortage = Shortage(FakeClock())
    woken: list[int] = []

    async def waiter(index: int) -> None:
        await shortage.wait(EMFILE)
        woken.append(index)

    async def scenario() -> None:
        waits = [asyncio.create_task(waiter(i)) for i in range(3)]
        await asyncio.sleep(0)
        shortage.answered()
        await asyncio.sleep(0.1)  # far less than RETRY_SECONDS: only a turn wakes one
        assert woken == [0]
        shortage.answered()
        shortage.answered()
        await asyncio.gather(*waits)

    asyncio.run(scenario())
    assert woken == [0, 1, 2]


def test_with_no_request_to_end_a_waiter_tries_again_after_a_while() -> None:
    """Nothing in flight frees a connection: the wait ends by itself after RETRY_SECONDS."""
    shortage = Shortage(FakeClock())

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await shortage.wait(EMFILE)
        return loop.time() - began

    waited = asyncio.run(scenario())
    assert RETRY_SECONDS * 0.9 <= waited < RETRY_SECONDS + 1
