"""A tick's claim and its write, on each kind of database: on PostgreSQL the claim runs on a
thread of its own beside the write, so the requests go on while results are written; on SQLite,
which has one writer, it follows the write on the one database thread. The stores are the real
ones on a real database, watched by a subclass that records when each call begins and ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pytest

from tests.doubles import START, FakeClock, ok
from tracker.core.models import ClaimedTask, FetchResult, PollRecord
from tracker.daemon.poller import Lane, Poller
from tracker.daemon.rules import Policy
from tracker.daemon.running import Crew
from tracker.store import Database
from tracker.store.polls import PollStore

POLICY = Policy(interval=10.0, give_up_after=3600.0, request_timeout=5.0)
OWNER = "test-daemon"


class Answering:
    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self, task_id: str) -> FetchResult:
        self.calls += 1
        return ok()


class WatchedPolls(PollStore):
    """The real store; a write waits (up to ``wait`` seconds) for ``claim_began``."""

    def __init__(self, database: Database, wait: float) -> None:
        super().__init__(database.engine, database.wakeups)
        self.calls: list[str] = []
        self.claim_began = threading.Event()
        self._wait = wait

    def claim_due(
        self, owner: str, now: datetime, lease_until: datetime, limit: int, **options: Any
    ) -> list[ClaimedTask]:
        self.calls.append("claim begins")
        self.claim_began.set()
        return super().claim_due(owner, now, lease_until, limit, **options)

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        self.calls.append("write begins")
        self.claim_began.wait(self._wait)
        written = super().record_polls(owner, records)
        self.calls.append("write ends")
        return written


@pytest.fixture
def crew(database: Database) -> Iterator[Crew]:
    crew = Crew.of(OWNER, database, FakeClock())
    yield crew
    crew.close()


def test_a_ticks_claim_runs_beside_its_write_where_the_database_allows(
    database: Database, crew: Crew
) -> None:
    """More tasks are due than one claim takes: the second tick writes the first claim's
    results and claims more. On PostgreSQL the claim begins while the write is under way (the
    write waits for it, which on one thread would never come); on SQLite it begins after."""
    database.tasks.add_tasks([f"t{i}" for i in range(40)], None, START)
    beside = database.concurrent_writers
    assert (crew.claiming is not None) == beside
    store = WatchedPolls(database, wait=10.0 if beside else 0.0)
    api = Answering()
    poller = Poller(store, api, Lane(POLICY, concurrency=1), crew)

    async def go() -> None:
        await poller.tick()  # the first claim: 16 tasks for the one request slot
        while api.calls < 16:
            await asyncio.sleep(0)
        store.claim_began.clear()
        store.calls.clear()
        await poller.tick()

    asyncio.run(go())
    assert store.calls[0] == "write begins"
    claim, written = store.calls.index("claim begins"), store.calls.index("write ends")
    assert claim < written if beside else claim > written
    tasks = database.reads.tasks()
    assert sum(task.poll_count for task in tasks) == 16  # the first claim's, all written
    assert sum(task.lease_owner == OWNER for task in tasks) == 16  # the second claim's
