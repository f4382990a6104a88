"""Running: claimed jobs, one per key, run by a bounded pool of coroutines."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tracker.daemon.running import Running


def test_at_most_the_workers_run_at_once_and_every_job_runs_once() -> None:
    async def go() -> tuple[int, list[int], int, int]:
        running: Running[int, None] = Running(3)
        at_once = 0
        most = 0
        done: list[int] = []

        async def job(key: int) -> None:
            nonlocal at_once, most
            at_once += 1
            most = max(most, at_once)
            await asyncio.sleep(0.01)
            at_once -= 1
            done.append(key)

        for key in range(10):
            assert running.start(key, job(key))
        assert len(running) == 10 and 9 in running
        await running.drain(5)
        await asyncio.sleep(0)  # the workers' own ends
        return most, done, len(running), len(asyncio.all_tasks())

    most, done, left, tasks = asyncio.run(go())
    assert most == 3
    assert done == list(range(10))  # in the order started
    assert left == 0
    assert tasks == 1  # only go() itself: no worker outlives its jobs


def test_a_key_under_way_is_not_started_again() -> None:
    async def go() -> tuple[bool, list[str]]:
        running: Running[str, None] = Running(4)
        ran: list[str] = []

        async def job(name: str) -> None:
            await asyncio.sleep(0.01)
            ran.append(name)

        running.start("k", job("first"))
        second = job("second")
        again = running.start("k", second)
        await running.drain(5)
        assert second.cr_frame is None  # closed, not left to warn
        return again, ran

    again, ran = asyncio.run(go())
    assert not again
    assert ran == ["first"]


def test_a_drain_cancels_what_runs_too_long_and_hands_back_what_never_began() -> None:
    async def go() -> tuple[list[str], list[str], float]:
        given_back: list[str] = []
        running: Running[str, None] = Running(1, given_back.append)
        finished: list[str] = []

        async def job(name: str, seconds: float) -> None:
            await asyncio.sleep(seconds)
            finished.append(name)

        running.start("slow", job("slow", 60))
        running.start("waiting", job("waiting", 0))
        began = asyncio.get_running_loop().time()
        await running.drain(0.05)
        return finished, given_back, asyncio.get_running_loop().time() - began

    finished, given_back, seconds = asyncio.run(go())
    assert finished == []
    assert given_back == ["slow", "waiting"]
    assert seconds < 5


def test_a_failing_job_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> list[str]:
        running: Running[str, None] = Running(1)
        ran: list[str] = []

        async def broken() -> None:
            raise RuntimeError("boom")

        async def fine() -> None:
            ran.append("fine")

        running.start("broken", broken())
        running.start("fine", fine())
        await running.drain(5)
        return ran

    with caplog.at_level(logging.ERROR, logger="tracker.daemon.running"):
        ran = asyncio.run(go())
    assert ran == ["fine"]
    assert "'broken' failed" in caplog.text and "boom" in caplog.text
