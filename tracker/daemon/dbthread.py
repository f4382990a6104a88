"""A thread for a daemon's database calls.

The repository is synchronous; calling it from the event loop would stall every request in
flight. The poller, the downloader and the notifier hand their calls to the daemon's database
thread instead, which also means a daemon never competes with itself for SQLite's write lock.
On PostgreSQL the pollers' claims have a thread of their own (``Crew.claiming``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class DatabaseThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracker-db")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(function, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
