"""The event loop: uvloop where it is installed (measured faster: docs/performance.md), and
how work under way on it is ended at shutdown."""

from __future__ import annotations

import asyncio
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


async def finish_or_cancel(running: Collection[asyncio.Task[Any]], timeout: float) -> None:
    """Let ``running`` finish for up to ``timeout`` seconds, then cancel what has not, and
    wait until those cancellations are through."""
    if not running:
        return
    _done, late = await asyncio.wait(running, timeout=timeout)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
