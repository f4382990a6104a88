"""A provider's pause in the database (``pauses`` and its tasks' next_poll_at), on a real
SQLite file and a real PostgreSQL database: written in one transaction with the tasks it holds,
the later end winning, expiring by itself, read back with the tasks it holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.pauses import Pause, PauseReason
from tracker.store import Database
from tracker.store.schema import tasks

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def pause(until: float, reason: PauseReason, refusals: int = 0, decided: float = 0.0) -> Pause:
    return Pause(DEFAULT_PROVIDER, at(until), reason, refusals, at(decided))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database.open(database_url)
    yield database
    database.close()


def next_polls(database: Database) -> dict[str, datetime]:
    return {task.task_id: task.next_poll_at for task in database.reads.tasks()}


def test_a_pause_holds_its_providers_unfinished_tasks_and_says_so(database: Database) -> None:
    """Postponing writes the row and moves the provider's unfinished tasks due before its end
    to its end, in one go; tasks due later, finished ones and another provider's stay."""
    database.tasks.add_tasks(["due", "later", "done", "other"], None, NOW)
    with database.engine.begin() as connection:
        connection.execute(
            update(tasks).where(tasks.c.task_id == "later").values(next_poll_at=at(600))
        )
        connection.execute(update(tasks).where(tasks.c.task_id == "other").values(provider="relay"))
    database.tasks.remove_tasks(["done"], NOW, channels=())
    database.polls.postpone(pause(60, PauseReason.REFUSED, refusals=1))
    assert next_polls(database) == {"due": at(60), "later": at(600), "done": NOW, "other": NOW}
    assert database.reads.pauses(at(1)) == [
        Pause(DEFAULT_PROVIDER, at(60), PauseReason.REFUSED, 1, NOW, waiting=2)
    ]
    assert database.reads.stats(at(1)).paused == database.reads.pauses(at(1))
    assert database.reads.pauses(at(60)) == [] and database.reads.stats(at(60)).paused == []


def test_the_later_end_wins(database: Database) -> None:
    """A pause decided later but ending sooner never shortens one in force (its refusals are
    noted); one ending later replaces it, reason and all, also once the first has ended."""
    database.tasks.add_tasks(["t"], None, NOW)
    database.polls.postpone(pause(120, PauseReason.RATE_LIMITED))
    database.polls.postpone(pause(30, PauseReason.REFUSED, refusals=1, decided=5))
    [kept] = database.reads.pauses(at(6))
    assert (kept.paused_until, kept.reason, kept.refusals) == (at(120), "rate_limited", 1)
    database.polls.postpone(pause(300, PauseReason.REFUSED, refusals=2, decided=10))
    [longer] = database.reads.pauses(at(11))
    assert (longer.paused_until, longer.reason, longer.refusals) == (at(300), "refused", 2)
    database.polls.postpone(pause(310, PauseReason.RATE_LIMITED, decided=305))
    [fresh] = database.reads.pauses(at(306))
    assert (fresh.paused_until, fresh.reason, fresh.refusals) == (at(310), "rate_limited", 0)
    assert next_polls(database) == {"t": at(310)}
