"""What a daemon shares between its parts, and the one way they run what they claim.

``Crew``: who the daemon is (the owner of its leases), the one thread its database calls run
on, its clock and its randomness, and the wakeups of its database. ``Running``: the jobs a part
has claimed and started (polls, downloads, notifications), one per key, forgotten when done and
drained at a stop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from tracker.core.clock import Clock
from tracker.core.eventloop import finish_or_cancel
from tracker.daemon.dbthread import DatabaseThread
from tracker.store.wakeups import Wakeups

Key = TypeVar("Key", bound=Hashable)
Result = TypeVar("Result")


@dataclass(frozen=True)
class Crew:
    owner: str
    database: DatabaseThread
    clock: Clock
    wakeups: Wakeups
    rng: random.Random = field(default_factory=random.Random)


class Running(Generic[Key, Result]):
    """Jobs under way, one per key. A key already running is not started again (its lease
    lapsed and it was claimed anew while it still runs); a job cancelled by a drain is handed
    to ``cancelled`` (the poller gives its task back)."""

    def __init__(self, cancelled: Callable[[Key], None] | None = None) -> None:
        self._jobs: dict[Key, asyncio.Task[Result]] = {}
        self._cancelled = cancelled

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, key: object) -> bool:
        return key in self._jobs

    def start(self, key: Key, job: Coroutine[Any, Any, Result]) -> bool:
        """Run ``job`` as a task of its own unless ``key`` runs already (then it is closed)."""
        if key in self._jobs:
            job.close()
            return False
        task = asyncio.create_task(job)
        self._jobs[key] = task
        task.add_done_callback(partial(self._forget, key))
        return True

    def _forget(self, key: Key, task: asyncio.Task[Result]) -> None:
        if self._jobs.get(key) is task:
            del self._jobs[key]
        if task.cancelled() and self._cancelled is not None:
            self._cancelled(key)

    async def drain(self, timeout: float) -> None:
        """Let the jobs under way finish for up to ``timeout`` seconds; cancel the rest."""
        await finish_or_cancel(list(self._jobs.values()), timeout)
