"""How many tasks a daemon claims and how late a claim may still start (Claimer), and poll
results on their way to the database (WriteBuffer, DatabaseHealth): kept in memory while the
store fails, written once it answers again, and the outage logged without flooding the log.

The store behind the buffer is a test double of its three-method seam, told when to fail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.doubles import START, FakeClock
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import FetchResult, PollRecord
from tracker.core.pauses import Pause, PauseReason
from tracker.core.video import Video
from tracker.daemon.claims import CLAIM_AHEAD, Claimer
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.rules import Policy
from tracker.daemon.writes import DatabaseHealth, WriteBuffer

POLICY = Policy(interval=10.0, give_up_after=3600.0, request_timeout=5.0)
WRITES_LOGGER = "tracker.daemon.writes"


class DatabaseDown(Exception):
    """What the store raises while it is told to fail."""


class FlakyStore:
    """Records what it is asked to write; raises DatabaseDown from the calls in ``failing``."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.written: list[tuple[str, list[str]]] = []
        self.released: list[tuple[str, list[str]]] = []
        self.postponed: list[datetime] = []

    def _check(self, call: str) -> None:
        if call in self.failing:
            raise DatabaseDown(f"{call}: database is locked\nsecond line never logged")

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        self._check("record_polls")
        self.written.append((owner, [record.task_id for record in records]))
        return len(records)

    def release(self, owner: str, task_ids: Sequence[str]) -> None:
        self._check("release")
        self.released.append((owner, list(task_ids)))

    def postpone(self, pause: Pause) -> None:
        self._check("postpone")
        self.postponed.append(pause.paused_until)


def pause_until(until: datetime) -> Pause:
    return Pause(DEFAULT_PROVIDER, until, PauseReason.RATE_LIMITED, 0, START)


class WriteTimes:
    def __init__(self) -> None:
        self.writes = 0

    def wrote(self, seconds: float) -> None:
        self.writes += 1


def record(task_id: str) -> PollRecord:
    fetch = FetchResult(200, 1.0, '{"status": "in_progress"}', Video("in_progress", 50), None)
    return PollRecord(
        task_id=task_id,
        polled_at=START,
        fetch=fetch,
        next_poll_at=START + timedelta(seconds=10),
        error_count=0,
        not_found_count=0,
        last_error=None,
        finish_reason=None,
    )


@pytest.fixture
def database() -> Iterator[DatabaseThread]:
    thread = DatabaseThread()
    yield thread
    thread.close()


# Claimer


def test_a_daemon_claims_ahead_of_its_request_slots_and_no_further(
    database: DatabaseThread,
) -> None:
    """Up to CLAIM_AHEAD tasks per request slot are held (claimed, polling, or waiting to be
    written); with that many held, nothing more is claimed."""
    claimer = Claimer(FlakyStore(), database, "d", POLICY, concurrency=4)  # type: ignore[arg-type]
    assert claimer.limit == 4 * CLAIM_AHEAD
    assert claimer.room(0, 0, 0.0) == 4 * CLAIM_AHEAD
    assert claimer.room(10, 0, 0.0) == 4 * CLAIM_AHEAD - 10
    assert claimer.room(4 * CLAIM_AHEAD, 0, 0.0) == 0
    assert claimer.room(4 * CLAIM_AHEAD + 7, 0, 0.0) == 0


def test_a_daemon_polling_faster_than_its_limit_claims_what_it_polls_in_half_a_second(
    database: DatabaseThread,
) -> None:
    """At thousands of polls a second the per-slot limit lasts less than a tick's write and
    claim: the lane's pace over the last two seconds sets how far ahead it claims, and a lane
    that slows down falls back to its limit once that time has passed."""
    claimer = Claimer(FlakyStore(), database, "d", POLICY, concurrency=4)  # type: ignore[arg-type]
    assert claimer.room(0, 0, 100.0) == 4 * CLAIM_AHEAD
    assert claimer.room(100, 6_000, 101.0) == 3_000 - 100  # 6,000 polls/s
    assert claimer.room(100, 6_020, 102.0) == 1_505 - 100  # 6,020 in two seconds
    # Three seconds on with no poll since: the pace is that of the last two seconds.
    assert claimer.room(0, 6_020, 105.0) == 4 * CLAIM_AHEAD


def test_a_pace_is_taken_over_half_a_second_at_least(database: DatabaseThread) -> None:
    """Ticks milliseconds apart say little: a burst of polls between two of them does not
    multiply the claim; after a long idle the pace is that of the polls since."""
    claimer = Claimer(FlakyStore(), database, "d", POLICY, concurrency=4)  # type: ignore[arg-type]
    assert claimer.room(0, 0, 10.0) == 4 * CLAIM_AHEAD
    assert claimer.room(0, 500, 10.001) == 4 * CLAIM_AHEAD
    assert claimer.room(0, 500, 3_600.0) == 4 * CLAIM_AHEAD  # an hour idle
    assert claimer.room(0, 2_500, 3_600.1) == 4 * CLAIM_AHEAD  # 2,000 polls after it
    assert claimer.room(0, 4_500, 3_600.6) == 3_333  # 4,000 polls in 0.6 s


@pytest.mark.parametrize("timeout", [5.0, 30.0])
def test_a_claim_may_start_only_within_its_start_window(
    database: DatabaseThread, timeout: float
) -> None:
    """A request may start until the start window after the claim has passed, and not after,
    so that the request and the write of its result end inside the lease."""
    policy = Policy(interval=10.0, give_up_after=3600.0, request_timeout=timeout)
    claimer = Claimer(FlakyStore(), database, "d", policy, concurrency=1)  # type: ignore[arg-type]
    window = policy.start_window
    assert claimer.may_start(START, START)
    assert claimer.may_start(START, START + window)
    assert not claimer.may_start(START, START + window + timedelta(milliseconds=1))
    assert START + window + timedelta(seconds=timeout) < START + policy.lease


# WriteBuffer


def make_buffer(
    store: FlakyStore, database: DatabaseThread
) -> tuple[WriteBuffer, DatabaseHealth, WriteTimes]:
    health, times = DatabaseHealth(FakeClock()), WriteTimes()
    return WriteBuffer(store, database, "daemon-1", health, times), health, times


def test_a_flush_writes_results_releases_unstarted_tasks_and_stores_the_pause(
    database: DatabaseThread,
) -> None:
    """One flush writes the results under the daemon's name, gives back what never started,
    and stores the latest pause asked for; then nothing is left waiting."""
    store = FlakyStore()
    buffer, health, times = make_buffer(store, database)
    buffer.add(record("a"), "default")
    buffer.add(record("b"), "relay-b")
    assert (buffer.unwritten("default"), buffer.unwritten("relay-b")) == (1, 1)
    buffer.give_back("c", "default")
    buffer.postpone(pause_until(START + timedelta(seconds=30)))
    buffer.postpone(pause_until(START + timedelta(seconds=10)))
    assert buffer.pending("default") and buffer.pending("relay-b")
    asyncio.run(buffer.flush())
    assert store.written == [("daemon-1", ["a", "b"])]
    assert store.released == [("daemon-1", ["c"])]
    assert store.postponed == [START + timedelta(seconds=30)]
    assert not buffer.pending("default") and not buffer.pending("relay-b")
    assert buffer.results == []
    assert (buffer.unwritten("default"), buffer.unwritten("relay-b")) == (0, 0)
    assert times.writes == 1  # every lane's results in one write
    assert health.down_since is None


@pytest.mark.parametrize("failing", ["record_polls", "release", "postpone"])
def test_what_a_failed_write_held_is_kept_and_written_on_the_next_flush(
    database: DatabaseThread, failing: str
) -> None:
    """Whichever call fails, what it held stays in memory, ahead of what arrives meanwhile, and
    the next flush after the database is back writes it; results already written by an
    earlier call of the same flush are not kept, so they are never written twice."""
    store = FlakyStore()
    buffer, health, _ = make_buffer(store, database)
    buffer.add(record("a"), "default")
    buffer.give_back("b", "default")
    buffer.postpone(pause_until(START + timedelta(seconds=30)))
    store.failing = {failing}
    asyncio.run(buffer.flush())
    assert buffer.pending("default") and not buffer.pending("relay-b")
    kept = ["a"] if failing == "record_polls" else []
    assert [r.task_id for r in buffer.results] == kept
    assert buffer.unwritten("default") == len(kept)  # the leases still held, counted
    assert health.down_since is not None
    buffer.add(record("c"), "default")
    buffer.give_back("d", "default")
    store.failing = set()
    asyncio.run(buffer.flush())
    written = [(owner, task_id) for owner, ids in store.written for task_id in ids]
    assert sorted(written) == [("daemon-1", "a"), ("daemon-1", "c")]
    assert store.written[-1][1][-1] == "c"
    assert sorted(task_id for _, ids in store.released for task_id in ids) == ["b", "d"]
    assert store.postponed == [START + timedelta(seconds=30)]
    assert not buffer.pending("default")
    assert health.down_since is None


def test_a_pause_kept_after_a_failed_write_is_not_shortened(database: DatabaseThread) -> None:
    """A pause that could not be stored is kept; a shorter one asked for meanwhile does not
    replace it."""
    store = FlakyStore()
    buffer, _, _ = make_buffer(store, database)
    buffer.postpone(pause_until(START + timedelta(seconds=60)))
    store.failing = {"postpone"}
    asyncio.run(buffer.flush())
    buffer.postpone(pause_until(START + timedelta(seconds=5)))
    store.failing = set()
    asyncio.run(buffer.flush())
    assert store.postponed == [START + timedelta(seconds=60)]


def test_an_empty_flush_asks_the_store_nothing(database: DatabaseThread) -> None:
    """Nothing waiting: no call reaches the store, even one that would fail."""
    store = FlakyStore()
    store.failing = {"record_polls", "release", "postpone"}
    buffer, health, _ = make_buffer(store, database)
    asyncio.run(buffer.flush())
    assert health.down_since is None
    assert (store.written, store.released, store.postponed) == ([], [], [])


# DatabaseHealth


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == WRITES_LOGGER and r.levelno == logging.ERROR
    ]


def test_a_database_outage_is_logged_once_then_every_half_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first failure is logged at once with the first line of its reason; failures within
    the next 30 s are not; one 30 s after the last log line is logged again."""
    caplog.set_level(logging.INFO, logger=WRITES_LOGGER)
    clock = FakeClock()
    health = DatabaseHealth(clock)
    failure = DatabaseDown("database is locked\nsecond line never logged")
    health.failed("writing 3 poll results", failure)
    assert health.down_since == START
    for _ in range(29):
        clock.advance(1)
        health.failed("writing 3 poll results", failure)
    assert len(errors_logged(caplog)) == 1
    clock.advance(1)
    health.failed("claiming due tasks", failure)
    logged = errors_logged(caplog)
    assert len(logged) == 2
    assert logged[0] == (
        "writing 3 poll results failed (DatabaseDown: database is locked); "
        "results stay in memory and are retried every tick"
    )
    assert logged[1].startswith("claiming due tasks failed (DatabaseDown")
    assert all("second line" not in line for line in logged)
    assert health.down_since == START


def test_the_database_coming_back_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """Recovery after an outage is logged once; recovering when nothing failed says nothing;
    a new outage afterwards is logged at once."""
    caplog.set_level(logging.INFO, logger=WRITES_LOGGER)
    clock = FakeClock()
    health = DatabaseHealth(clock)
    health.recovered()
    assert caplog.records == []
    health.failed("writing 1 poll results", DatabaseDown("gone"))
    clock.advance(5)
    health.recovered()
    health.recovered()
    recoveries = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in recoveries] == [
        "the database is writable again; results kept were written"
    ]
    assert health.down_since is None
    clock.advance(1)
    health.failed("writing 1 poll results", DatabaseDown("gone again"))
    assert len(errors_logged(caplog)) == 2
    assert health.down_since == START + timedelta(seconds=6)


def test_a_webhook_makes_due_only_the_result_of_the_lane_it_is_told_to(
    database: DatabaseThread,
) -> None:
    """A result waits due at once when its own lane says so; another lane (whose pause may
    hold it) cannot: the lanes share the buffer, not their rules."""
    store = FlakyStore()
    buffer, _, _ = make_buffer(store, database)
    later = START + timedelta(seconds=10)
    buffer.add(replace(record("a"), next_poll_at=later), "relay-b")
    buffer.due_at_once("a", "default", START)
    assert [r.next_poll_at for r in buffer.results] == [later]
    buffer.due_at_once("a", "relay-b", START)
    assert [r.next_poll_at for r in buffer.results] == [START]
    assert buffer.unwritten("relay-b") == 1 and buffer.unwritten("default") == 0


def test_a_flush_waits_for_one_under_way_and_then_writes_what_that_one_could_not(
    database: DatabaseThread,
) -> None:
    """Two lanes flushing at once: the second waits for the first; when the first fails, its
    results are back before the second looks, so the second writes them (and each lane's count
    of results waiting stays right meanwhile)."""

    class FailingOnce(FlakyStore):
        def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
            self.failing, failing = set(), self.failing
            if failing:
                raise DatabaseDown("record_polls: database is locked")
            return super().record_polls(owner, records)

    store = FailingOnce()
    store.failing = {"record_polls"}
    buffer, _, _ = make_buffer(store, database)
    buffer.add(record("a"), "default")
    buffer.add(record("b"), "relay-b")

    async def both() -> None:
        first = asyncio.ensure_future(buffer.flush())
        await asyncio.sleep(0)  # the first has taken the results and is writing them
        await buffer.flush()
        await first

    asyncio.run(both())
    assert [sorted(ids) for _, ids in store.written] == [["a", "b"]]
    assert buffer.results == [] and buffer.unwritten("default") == 0
