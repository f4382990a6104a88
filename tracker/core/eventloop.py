"""The event loop: uvloop where it is installed (measured faster: docs/performance.md), how work
under way on it is ended at shutdown, and the garbage collector's settings for a process that
polls or serves until stopped."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Collection, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop, uvloop's where available, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def collect_garbage_for_a_long_run() -> None:
    """For a process that polls or serves until stopped: everything loaded before is never
    garbage, so the cyclic collector stops walking it, and young objects are collected in
    larger batches. The collector took 6-7% of a polling daemon's event loop thread at full
    speed, and its pauses held a thousand event streams back by some 200 ms at the slowest 1%
    (docs/performance.md); polls and events make little cyclic garbage, so memory barely
    moves."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def finish_or_cancel(running: Collection[asyncio.Task[Any]], timeout: float) -> None:
    """Let ``running`` finish for up to ``timeout`` seconds, then cancel what has not, and
    wait until those cancellations are through."""
    if not running:
        return
    _done, late = await asyncio.wait(running, timeout=timeout)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
