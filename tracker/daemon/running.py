"""What a daemon shares between its parts, and the one way they run what they claim.

``Crew``: who the daemon is (the owner of its leases), the thread its database calls run on
(and on PostgreSQL a second, for its claims), its clock and its randomness, and the wakeups of
its database. ``Running``: the jobs a part has claimed and started (polls, downloads,
notifications), one per key, run by a bounded pool of coroutines, forgotten when done and
drained at a stop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tracker.core.clock import Clock
from tracker.core.eventloop import finish_or_cancel
from tracker.daemon.dbthread import DatabaseThread
from tracker.store.wakeups import Wakeups

if TYPE_CHECKING:
    from tracker.store.database import Database

logger = logging.getLogger(__name__)

Key = TypeVar("Key", bound=Hashable)
Result = TypeVar("Result")


@dataclass(frozen=True)
class Crew:
    owner: str
    database: DatabaseThread
    clock: Clock
    wakeups: Wakeups
    rng: random.Random = field(default_factory=random.Random)
    # Where the pollers' claims run, when not on ``database``: a thread of their own on
    # PostgreSQL, where a claim and a write may run at once; SQLite has one writer.
    claiming: DatabaseThread | None = None

    @classmethod
    def of(cls, owner: str, database: Database, clock: Clock) -> Crew:
        """A crew on ``database``, with a thread of their own for claims where two of its
        transactions may write at once."""
        claiming = DatabaseThread() if database.concurrent_writers else None
        return cls(owner, DatabaseThread(), clock, database.wakeups, claiming=claiming)

    @property
    def claims_database(self) -> DatabaseThread:
        return self.claiming or self.database

    def close(self) -> None:
        """Let the database calls under way finish; take no more."""
        self.database.close()
        if self.claiming is not None:
            self.claiming.close()


class Running(Generic[Key, Result]):
    """Jobs under way, one per key, run in turn by at most ``workers`` coroutines. A key already
    under way is not started again (its lease lapsed and it was claimed anew while it still
    runs); a job cancelled by a drain, or never begun by then, is handed to ``cancelled`` (the
    poller gives its task back).

    A job is a coroutine awaited by a worker, not an asyncio task of its own: at thousands of
    polls a second, a task per poll cost the event loop some 5% of its time (docs/performance.md).
    Workers start as jobs come and end when none waits, so none outlives its event loop."""

    def __init__(self, workers: int, cancelled: Callable[[Key], None] | None = None) -> None:
        self._workers = workers
        self._cancelled = cancelled
        self._waiting: deque[tuple[Key, Coroutine[Any, Any, Result]]] = deque()
        self._keys: set[Key] = set()  # waiting or running
        self._pool: set[asyncio.Task[None]] = set()
        self._active = 0  # workers not yet through: a finished one leaves the pool a step later

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def start(self, key: Key, job: Coroutine[Any, Any, Result]) -> bool:
        """Run ``job`` when a worker is free unless ``key`` is under way (then it is closed)."""
        if key in self._keys:
            job.close()
            return False
        self._keys.add(key)
        self._waiting.append((key, job))
        if self._active < self._workers:
            self._active += 1
            worker = asyncio.create_task(self._work())
            self._pool.add(worker)
            worker.add_done_callback(self._pool.discard)
        return True

    async def _work(self) -> None:
        try:
            while self._waiting:
                key, job = self._waiting.popleft()
                try:
                    await job
                except asyncio.CancelledError:
                    if self._cancelled is not None:
                        self._cancelled(key)
                    raise
                except Exception:
                    logger.exception("%r failed", key)
                finally:
                    self._keys.discard(key)
        finally:
            self._active -= 1

    async def drain(self, timeout: float) -> None:
        """Let the jobs under way and waiting finish for up to ``timeout`` seconds; cancel the
        rest."""
        await finish_or_cancel(list(self._pool), timeout)
        while self._waiting:
            key, job = self._waiting.popleft()
            job.close()
            self._keys.discard(key)
            if self._cancelled is not None:
                self._cancelled(key)
