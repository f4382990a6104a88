"""The poller on a real SQLite file: claiming, batching and writing, account-wide pauses, what
finished tasks owe, shutdown. The API is scripted and the clock set by hand, so every rule is
checked against the rows the real stores wrote."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.doubles import START, FakeClock, http_error, ok
from tracker.core.follow_ups import FollowUps
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import ClaimedTask, FetchResult, PollRecord
from tracker.core.pauses import Pause, PauseReason
from tracker.core.video import ASSETS_LAST
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.lanes import Lanes
from tracker.daemon.observing import Unobserved
from tracker.daemon.poller import Lane, Poller
from tracker.daemon.rules import Policy, decide
from tracker.daemon.running import Crew
from tracker.daemon.writes import DatabaseHealth, WriteBuffer
from tracker.errors import LocalResourceError
from tracker.store import Database
from tracker.store.polls import PollStore

POLICY = Policy(interval=10.0, give_up_after=3600.0, request_timeout=5.0)
OWNER = "test-daemon"


class ScriptedAPI:
    """Answers each task from its list (the last answer repeats) and records what it was asked."""

    def __init__(
        self,
        answers: dict[str, list[FetchResult]] | None = None,
        default: FetchResult | None = None,
    ) -> None:
        self.answers = answers or {}
        self.default = default or ok()
        self.calls: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.overlaps = 0
        self.max_in_flight = 0

    async def fetch(self, task_id: str) -> FetchResult:
        if self.in_flight[task_id]:
            self.overlaps += 1
        self.in_flight[task_id] += 1
        self.max_in_flight = max(self.max_in_flight, sum(self.in_flight.values()))
        await asyncio.sleep(0)
        self.in_flight[task_id] -= 1
        script = self.answers.get(task_id, [self.default])
        answer = script[min(self.calls[task_id], len(script) - 1)]
        self.calls[task_id] += 1
        return answer


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 't.db'}")
    yield database
    database.close()


@pytest.fixture
def db_thread() -> Iterator[DatabaseThread]:
    thread = DatabaseThread()
    yield thread
    thread.close()


def make_poller(
    db: Database,
    db_thread: DatabaseThread,
    api: Any,
    clock: FakeClock,
    *,
    concurrency: int = 4,
    store: PollStore | None = None,
    policy: Policy = POLICY,
    record_changes_only: bool = False,
    **options: Any,
) -> Poller:
    lane = Lane(policy, concurrency=concurrency, record_changes_only=record_changes_only)
    crew = Crew(OWNER, db_thread, clock, db.wakeups, random.Random(5))
    return Poller(store or db.polls, api, lane, crew, **options)


def run_pass(poller: Poller, all_unfinished: bool = False) -> None:
    async def go() -> None:
        await poller.poll_pass(all_unfinished)

    asyncio.run(go())


def test_a_pass_polls_each_due_task_once_and_writes_one_snapshot_each(
    db: Database, db_thread: DatabaseThread
) -> None:
    """`poll`: every due task is asked once, never twice at a time, within the concurrency,
    and each answer becomes one snapshot."""
    db.tasks.add_tasks([f"t{i}" for i in range(20)], None, START)
    api = ScriptedAPI()
    run_pass(make_poller(db, db_thread, api, FakeClock()))
    assert set(api.calls.values()) == {1}
    assert len(api.calls) == 20
    assert all(len(db.reads.history(f"t{i}")) == 1 for i in range(20))
    assert api.overlaps == 0
    assert api.max_in_flight <= 4
    assert all(task.lease_owner is None for task in db.reads.tasks())


def test_a_pass_skips_tasks_not_due_unless_all_is_asked(
    db: Database, db_thread: DatabaseThread
) -> None:
    """A task polled a moment ago is left alone by `poll` but polled by `poll --all`."""
    db.tasks.add_tasks(["a", "b"], None, START)
    api, clock = ScriptedAPI(), FakeClock()

    async def scenario() -> None:
        poller = make_poller(db, db_thread, api, clock)
        await poller.poll_pass()
        clock.advance(1)
        await poller.poll_pass()
        assert api.calls == Counter({"a": 1, "b": 1})
        clock.advance(1)
        await poller.poll_pass(all_unfinished=True)

    asyncio.run(scenario())
    assert api.calls == Counter({"a": 2, "b": 2})


def test_finished_tasks_are_never_polled_again(db: Database, db_thread: DatabaseThread) -> None:
    """Once a task saw a terminal status it is not claimed again, however much time passes."""
    db.tasks.add_tasks(["done", "running"], None, START)
    api, clock = ScriptedAPI({"done": [ok("completed", 100)]}), FakeClock()

    async def scenario() -> None:
        poller = make_poller(db, db_thread, api, clock)
        for _ in range(5):
            await poller.poll_pass(all_unfinished=True)
            clock.advance(60)

    asyncio.run(scenario())
    assert api.calls["done"] == 1
    assert api.calls["running"] == 5
    [done] = db.reads.tasks(status="completed")
    assert (done.finished, done.finish_reason, done.finished_at) == (True, "completed", START)
    assert [s.finished for s in db.reads.history("done")] == [True]


def test_tasks_held_by_another_daemon_are_not_polled(
    db: Database, db_thread: DatabaseThread
) -> None:
    """A lease held by someone else keeps the task out of this daemon's claims."""
    db.tasks.add_tasks(["mine", "theirs"], None, START)
    [taken] = db.polls.claim_due("other-daemon", START, START + timedelta(minutes=1), 1)
    api = ScriptedAPI()
    run_pass(make_poller(db, db_thread, api, FakeClock()))
    assert len(api.calls) == 1
    assert taken.task_id not in api.calls
    held = db.reads.task(taken.task_id)
    assert held is not None and held.lease_owner == "other-daemon" and held.poll_count == 0


def test_results_for_a_lost_lease_are_dropped(db: Database) -> None:
    """A task removed while its poll was in flight keeps no snapshot from that poll, and stays
    removed."""
    db.tasks.add_tasks(["t"], None, START)
    [task] = db.polls.claim_due(OWNER, START, START + timedelta(minutes=1), 10)
    db.tasks.remove_tasks(["t"], START, channels=())
    record = decide(task, ok("completed", 100), START, POLICY, random.Random(1))
    assert db.polls.record_polls(OWNER, [record]) == 0
    [removal] = db.reads.history("t")  # the removal's own snapshot, none from the poll
    assert (removal.finished, removal.http_status, removal.status) == (True, None, None)
    removed = db.reads.task("t")
    assert removed is not None and removed.finish_reason == "removed"


def test_a_429_pauses_every_task_until_retry_after(db: Database, db_thread: DatabaseThread) -> None:
    """Rate limits belong to the account: after a 429 no task is polled until it elapses, and
    the tasks claimed but not polled are given back."""
    db.tasks.add_tasks([f"t{i}" for i in range(10)], None, START)
    api, clock = ScriptedAPI(default=http_error(429, retry_after=30.0)), FakeClock()

    async def scenario() -> None:
        poller = make_poller(db, db_thread, api, clock, concurrency=1)
        await poller.poll_pass()
        assert sum(api.calls.values()) == 1
        assert poller.pause.until == START + timedelta(seconds=30)
        unpolled = [task for task in db.reads.tasks() if task.poll_count == 0]
        assert len(unpolled) == 9 and all(task.lease_owner is None for task in unpolled)
        clock.advance(29)
        await poller.poll_pass()
        assert sum(api.calls.values()) == 1
        api.default = ok()
        clock.advance(2)
        await poller.poll_pass()

    asyncio.run(scenario())
    assert sum(api.calls.values()) == 11


def test_401_pauses_the_daemon_with_growing_waits_and_finishes_nothing(
    db: Database, db_thread: DatabaseThread
) -> None:
    """A refused token backs the whole daemon off, capped at 5 minutes; no task finishes and
    no task's error count grows."""
    db.tasks.add_tasks(["a", "b"], None, START)
    api, clock = ScriptedAPI(default=http_error(401)), FakeClock()
    pauses = []

    async def scenario() -> None:
        poller = make_poller(db, db_thread, api, clock, concurrency=1)
        for _ in range(8):
            summary = await poller.poll_pass(all_unfinished=True)
            assert summary.refused and summary.paused_until == poller.pause.until
            assert poller.pause.until is not None
            pauses.append((poller.pause.until - clock.now()).total_seconds())
            clock.current = poller.pause.until

    asyncio.run(scenario())
    assert pauses[:4] == [10.0, 20.0, 40.0, 80.0]
    assert max(pauses) == 300.0
    assert not any(task.finished for task in db.reads.tasks())
    assert all(task.error_count == 0 for task in db.reads.tasks())


def test_a_refused_token_pause_is_stored_for_every_task(
    db: Database, db_thread: DatabaseThread
) -> None:
    """After a 401 every unfinished task waits out the pause in next_poll_at, so a restart or
    a `tracker poll` does not ask the API again before it ends; `pauses` says until when and
    why until it ends."""
    db.tasks.add_tasks([f"t{i}" for i in range(5)], None, START)
    api = ScriptedAPI(default=http_error(401))
    poller = make_poller(db, db_thread, api, FakeClock(), concurrency=1)
    run_pass(poller)
    until = poller.pause.until
    assert sum(api.calls.values()) == 1
    assert until is not None
    tasks = db.reads.tasks()
    assert all(task.next_poll_at >= until for task in tasks)
    unpolled = [task for task in tasks if task.poll_count == 0]
    assert len(unpolled) == 4 and {task.next_poll_at for task in unpolled} == {until}
    # And in `pauses`, for every command to say until when and why.
    assert db.reads.pauses(START) == [
        Pause(DEFAULT_PROVIDER, until, PauseReason.REFUSED, 1, START, waiting=5)
    ]
    assert db.reads.pauses(until) == []  # it expires by itself
    # A fresh daemon on the same database finds nothing due before the pause ends.
    later = FakeClock(until - timedelta(seconds=1))
    fresh = make_poller(db, db_thread, api, later)
    run_pass(fresh)
    assert sum(api.calls.values()) == 1


def test_tick_claims_due_tasks_and_the_next_tick_writes_them(
    db: Database, db_thread: DatabaseThread
) -> None:
    """The daemon's tick starts polls without waiting for them; a later tick writes them."""
    db.tasks.add_tasks(["a", "b", "c"], None, START)
    poller = make_poller(db, db_thread, ScriptedAPI(), FakeClock())

    async def go() -> None:
        await poller.tick()
        assert poller.busy
        assert all(task.poll_count == 0 for task in db.reads.tasks())
        while poller.busy:
            await asyncio.sleep(0)
            await poller.tick()

    asyncio.run(go())
    tasks = db.reads.tasks()
    assert {task.task_id: task.poll_count for task in tasks} == {"a": 1, "b": 1, "c": 1}
    assert all(task.lease_owner is None for task in tasks)


def test_drain_gives_back_tasks_that_never_started(db: Database, db_thread: DatabaseThread) -> None:
    """On shutdown, claimed tasks whose request never started are released at once, and the
    polls in flight are written."""
    db.tasks.add_tasks([f"t{i}" for i in range(8)], None, START)

    class BlockedAPI(ScriptedAPI):
        def __init__(self) -> None:
            super().__init__()
            self.gate = asyncio.Event()

        async def fetch(self, task_id: str) -> FetchResult:
            self.calls[task_id] += 1
            await self.gate.wait()
            return ok()

    api = BlockedAPI()
    poller = make_poller(db, db_thread, api, FakeClock(), concurrency=2)

    async def go() -> None:
        await poller.tick()
        for _ in range(5):
            await asyncio.sleep(0)
        api.gate.set()
        await poller.drain(timeout=5)

    asyncio.run(go())
    tasks = db.reads.tasks()
    assert sum(api.calls.values()) == 2
    assert sum(task.poll_count for task in tasks) == 2
    assert all(task.lease_owner is None for task in tasks)


def test_finishes_owe_notifications_and_completions_owe_downloads(
    db: Database, db_thread: DatabaseThread
) -> None:
    """With follow-ups configured, a completed task owes its files and an event per channel;
    one finished by three 404s owes an event describing what it last showed; the sweep's
    timed-out tasks owe events too; none but the completed one owes files."""
    db.tasks.add_tasks(["done", "gone", "slow"], None, START)
    api = ScriptedAPI(
        {
            "done": [ok("completed", 100)],
            "gone": [ok("in_progress", 40)] + [http_error(404)] * 3,
            "slow": [ok("in_progress", 10)],
        }
    )
    clock = FakeClock()
    follow_ups = FollowUps(variants=("video", "thumbnail"), channels=("webhook", "command"))

    async def scenario() -> None:
        poller = make_poller(db, db_thread, api, clock, follow_ups=follow_ups)
        for _ in range(4):
            await poller.poll_pass(all_unfinished=True)
            clock.advance(20)
        clock.advance(3600)
        assert await poller.sweep() == ["slow"]

    asyncio.run(scenario())
    downloads = db.follow_ups.downloads()
    assert [(d.task_id, d.variant, d.state) for d in downloads] == [
        ("done", "thumbnail", "pending"),
        ("done", "video", "pending"),
    ]
    # The API gave no expiry: the files are assumed to last ASSETS_LAST from the poll.
    assert {d.expires_at for d in downloads} == {START + ASSETS_LAST}
    assert {d.next_attempt_at for d in downloads} == {START}
    rows = db.follow_ups.events()
    events = {(row["channel"], row["task_id"]): row["payload"] for row in rows}
    assert set(events) == {(c, t) for c in ("webhook", "command") for t in ("done", "gone", "slow")}
    assert len(rows) == 6 and len({row["event_id"] for row in rows}) == 6
    assert {row["state"] for row in rows} == {"pending"}
    assert all(payload["task_id"] == task for (_, task), payload in events.items())
    assert events[("webhook", "done")]["finish_reason"] == "completed"
    assert events[("webhook", "done")]["video"] == {"status": "completed"}
    assert events[("webhook", "gone")]["finish_reason"] == "not_found"
    assert (events[("webhook", "gone")]["status"], events[("webhook", "gone")]["progress"]) == (
        "in_progress",
        40,
    )
    assert events[("webhook", "gone")]["video"] is None
    assert events[("command", "slow")]["finish_reason"] == "timed_out"
    assert events[("command", "slow")]["status"] == "in_progress"
    assert events[("webhook", "done")] == events[("command", "done")]


def test_without_follow_ups_nothing_is_owed(db: Database, db_thread: DatabaseThread) -> None:
    """A daemon with neither downloads nor notifications configured writes no rows to either
    table, whatever finishes."""
    db.tasks.add_tasks(["done", "failed"], None, START)
    api = ScriptedAPI({"done": [ok("completed", 100)], "failed": [ok("failed", 0)]})
    run_pass(make_poller(db, db_thread, api, FakeClock()))
    assert all(task.finished for task in db.reads.tasks())
    assert db.follow_ups.downloads() == []
    assert db.follow_ups.events() == []


def test_recording_only_changes_stores_snapshots_of_changes_and_finishes(
    db: Database, db_thread: DatabaseThread
) -> None:
    """With record_changes_only, repeated answers update the task but store no snapshot; a new
    status or progress and the finish do."""
    db.tasks.add_tasks(["t"], None, START)
    api = ScriptedAPI(
        {"t": [ok("queued", 0), ok("queued", 0), ok("in_progress", 50), ok("completed", 100)]}
    )
    clock = FakeClock()

    async def scenario() -> None:
        poller = make_poller(db, db_thread, api, clock, record_changes_only=True)
        for _ in range(4):
            await poller.poll_pass(all_unfinished=True)
            clock.advance(20)

    asyncio.run(scenario())
    assert [(s.status, s.progress) for s in db.reads.history("t")] == [
        ("queued", 0),
        ("in_progress", 50),
        ("completed", 100),
    ]
    task = db.reads.task("t")
    assert task is not None and task.poll_count == 4 and task.finished


class StuckClaims(PollStore):
    """Claims that hang until released, as a query on a dead connection does."""

    def __init__(self, db: Database) -> None:
        super().__init__(db.engine)
        self.entered = threading.Event()
        self.release_claims = threading.Event()

    def claim_due(self, *args: Any, **kwargs: Any) -> list[ClaimedTask]:
        self.entered.set()
        self.release_claims.wait(10)
        return super().claim_due(*args, **kwargs)


class CountingObserver:
    def __init__(self) -> None:
        self.ticks = 0

    def polled(self, record: PollRecord, lateness: float) -> None:
        pass

    def wrote(self, seconds: float) -> None:
        pass

    def ticked(self) -> None:
        self.ticks += 1


def test_a_tick_stuck_on_the_database_is_not_counted_as_ticking(
    db: Database, db_thread: DatabaseThread
) -> None:
    """Ticks that skip because a database call hangs say nothing to the observer (/healthz
    then reports a stall); the tick counts once the call returns."""
    store = StuckClaims(db)
    observer = CountingObserver()
    poller = make_poller(db, db_thread, ScriptedAPI(), FakeClock(), store=store, observer=observer)

    async def scenario() -> tuple[int, int]:
        stuck = asyncio.create_task(poller.tick())
        await asyncio.to_thread(store.entered.wait, 5)
        await poller.tick()  # overlaps the stuck one: skipped
        while_stuck = observer.ticks
        store.release_claims.set()
        await stuck
        return while_stuck, observer.ticks

    assert asyncio.run(scenario()) == (0, 1)


class GatedAPI(ScriptedAPI):
    """Answers only once let through, so a test can act while a poll is under way."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.gate = asyncio.Event()

    async def fetch(self, task_id: str) -> FetchResult:
        self.asked.set()
        await self.gate.wait()
        return await super().fetch(task_id)


@pytest.mark.parametrize("news_arrives", ["while the poll is under way", "before it is written"])
def test_a_webhook_during_a_poll_keeps_the_task_due(
    db: Database, db_thread: DatabaseThread, news_arrives: str
) -> None:
    """poll_soon while a poll of the task is in flight, or its result not yet written: the
    result keeps the task due at once instead of an interval away."""
    db.tasks.add_tasks(["t1"], None, START)
    api = GatedAPI()
    poller = make_poller(db, db_thread, api, FakeClock())

    async def scenario() -> None:
        polling = asyncio.create_task(poller.tick())
        await api.asked.wait()
        if news_arrives == "while the poll is under way":
            poller.poll_soon("t1")
        api.gate.set()
        await polling
        while poller.polls == 0:
            await asyncio.sleep(0)
        if news_arrives == "before it is written":
            poller.poll_soon("t1")
        await poller.flush()

    asyncio.run(scenario())
    task = db.reads.task("t1")
    assert task is not None and task.poll_count == 1
    assert task.next_poll_at == START


def test_without_news_a_poll_puts_the_task_an_interval_away(
    db: Database, db_thread: DatabaseThread
) -> None:
    """The control for the test above: the same poll, no webhook, next poll an interval on."""
    db.tasks.add_tasks(["t1"], None, START)
    run_pass(make_poller(db, db_thread, ScriptedAPI(), FakeClock()))
    task = db.reads.task("t1")
    assert task is not None and task.poll_count == 1
    assert task.next_poll_at >= START + timedelta(seconds=POLICY.interval * 0.9)


class CountingStore(PollStore):
    """The real store, counting the claims and the looks at the next due time."""

    def __init__(self, db: Database) -> None:
        super().__init__(db.engine)
        self.calls: Counter[str] = Counter()

    def claim_due(self, *args: Any, **kwargs: Any) -> list[ClaimedTask]:
        self.calls["claim_due"] += 1
        return super().claim_due(*args, **kwargs)

    def next_due(self, now: datetime, provider: str | None = None) -> datetime | None:
        self.calls["next_due"] += 1
        return super().next_due(now, provider)


async def ticks(poller: Poller, clock: FakeClock, seconds: float, every: float = 0.1) -> None:
    """The scheduler's ticks for ``seconds`` of the clock, every ``every``, each one finishing
    what it started (polls, writes) before the clock moves on."""
    for _ in range(round(seconds / every)):
        await poller.tick()
        while poller.busy:
            await asyncio.sleep(0)
            await poller.tick()
        clock.advance(every)


def test_with_nothing_due_the_poller_asks_the_database_once_a_second(
    db: Database, db_thread: DatabaseThread
) -> None:
    """One task at a 15 s interval, ticks every 0.1 s: between its polls the poller claims
    nothing and looks at the next due time at most once a second (not ten claims a second),
    and still polls the task the tick its time comes."""
    db.tasks.add_tasks(["t"], None, START)
    store, clock, api = CountingStore(db), FakeClock(), ScriptedAPI()
    policy = Policy(interval=15.0, give_up_after=3600.0, request_timeout=5.0)
    poller = make_poller(db, db_thread, api, clock, store=store, policy=policy)

    async def go() -> None:
        await ticks(poller, clock, 0.1)  # polls it, writes it
        assert api.calls["t"] == 1
        [task] = db.reads.tasks()
        due = task.next_poll_at
        store.calls.clear()
        await ticks(poller, clock, 5.0)
        assert store.calls["claim_due"] <= 1
        assert store.calls["next_due"] <= 6
        assert poller.rest_seconds() > 0
        clock.current = due - timedelta(seconds=0.05)
        store.calls.clear()
        await ticks(poller, clock, 0.2)  # the first tick past the due time claims, polls it
        assert api.calls["t"] == 2
        assert store.calls["next_due"] <= 2

    asyncio.run(go())


def test_while_other_processes_writes_are_heard_the_poller_looks_every_five_seconds(
    db: Database, db_thread: DatabaseThread
) -> None:
    """With the LISTEN connection up, a write that makes work wakes the daemon: between two
    polls of its one task (15 s apart) it asks the database once in five seconds, not once a
    second."""
    db.tasks.add_tasks(["t"], None, START)
    store, clock, api = CountingStore(db), FakeClock(), ScriptedAPI()
    policy = Policy(interval=15.0, give_up_after=3600.0, request_timeout=5.0)
    poller = make_poller(db, db_thread, api, clock, store=store, policy=policy)
    db.wakeups.listening = True

    async def go() -> None:
        await ticks(poller, clock, 0.1)
        store.calls.clear()
        await ticks(poller, clock, 12.0)
        assert store.calls["claim_due"] == 0 and store.calls["next_due"] <= 3

    asyncio.run(go())


def test_wake_makes_the_next_tick_claim_at_once(db: Database, db_thread: DatabaseThread) -> None:
    """A task registered unheard of waits for the idle look (a second at most); once the poller
    is woken (the daemon's loop does it on news of tasks), the very next tick claims and polls
    it."""
    store, clock, api = CountingStore(db), FakeClock(), ScriptedAPI()
    poller = make_poller(db, db_thread, api, clock, store=store)

    async def go() -> None:
        await ticks(poller, clock, 0.2)  # nothing registered: it goes quiet
        assert poller.rest_seconds() > 0.5
        db.tasks.add_tasks(["elsewhere"], None, clock.now())
        claims = store.calls["claim_due"]
        await ticks(poller, clock, 0.3)
        assert store.calls["claim_due"] == claims and api.calls["elsewhere"] == 0
        db.tasks.add_tasks(["here"], None, clock.now())
        poller.wake()
        assert poller.rest_seconds() == 0
        await poller.tick()
        assert store.calls["claim_due"] == claims + 1 and poller.busy
        await ticks(poller, clock, 0.1)
        assert (api.calls["elsewhere"], api.calls["here"]) == (1, 1)

    asyncio.run(go())


class ShortAPI(ScriptedAPI):
    """Out of open files for the first ``short`` requests of each task, then answers."""

    def __init__(self, short: int) -> None:
        super().__init__()
        self.short = short
        self.refused: Counter[str] = Counter()

    async def fetch(self, task_id: str) -> FetchResult:
        if self.refused[task_id] < self.short:
            self.refused[task_id] += 1
            raise LocalResourceError("no connection to the API could be opened: EMFILE")
        return await super().fetch(task_id)


def test_a_request_short_of_local_resources_is_sent_again_and_fails_nothing(
    db: Database, db_thread: DatabaseThread, caplog: pytest.LogCaptureFixture
) -> None:
    """The machine out of descriptors is not the task's failure: no error snapshot, no
    error_count, no back-off; one ERROR line; the request is sent again and answered."""
    db.tasks.add_tasks(["a", "b", "c"], None, START)
    api = ShortAPI(short=2)
    with caplog.at_level(logging.ERROR):
        run_pass(make_poller(db, db_thread, api, FakeClock()))
    assert api.calls == Counter({"a": 1, "b": 1, "c": 1})
    for task in db.reads.tasks():
        assert (task.poll_count, task.error_count, task.last_error) == (1, 0, None)
        assert task.next_poll_at >= START + timedelta(seconds=POLICY.interval * 0.9)
        [snapshot] = db.reads.history(task.task_id)
        assert snapshot.error is None
    shortages = [r for r in caplog.records if r.name == "tracker.daemon.shortage"]
    assert len(shortages) == 1 and "EMFILE" in shortages[0].getMessage()


class WritingStore(PollStore):
    """The real store, keeping the task IDs of each write of poll results."""

    def __init__(self, db: Database) -> None:
        super().__init__(db.engine)
        self.written: list[list[str]] = []

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int:
        self.written.append(sorted(record.task_id for record in records))
        return super().record_polls(owner, records)


def test_the_lanes_of_a_daemon_write_every_providers_results_in_one_transaction(
    db: Database, db_thread: DatabaseThread
) -> None:
    """Two providers' polls of one tick are written by the next tick in one write, not one
    per provider; meanwhile each lane counts only its own results as the leases it holds."""
    db.tasks.add_tasks(["a1", "a2"], None, START)
    db.tasks.add_tasks(["b1", "b2", "b3"], None, START, provider="relay-b")
    store, clock = WritingStore(db), FakeClock()
    crew = Crew(OWNER, db_thread, clock, db.wakeups, random.Random(5))
    writes = WriteBuffer(store, db_thread, OWNER, DatabaseHealth(clock), Unobserved())
    pollers = [
        Poller(store, ScriptedAPI(), Lane(POLICY, provider=name), crew, writes=writes)
        for name in (DEFAULT_PROVIDER, "relay-b")
    ]
    lanes = Lanes(pollers, crew, store.unfinished_providers, POLICY)

    async def go() -> None:
        await lanes.tick()
        while len(writes.results) < 5:
            await asyncio.sleep(0)
        assert [poller.held for poller in pollers] == [2, 3]
        assert lanes.held == 5
        await lanes.tick()
        assert lanes.held == 0

    asyncio.run(go())
    assert store.written == [["a1", "a2", "b1", "b2", "b3"]]
    assert {task.task_id: task.poll_count for task in db.reads.tasks()} == dict.fromkeys(
        ["a1", "a2", "b1", "b2", "b3"], 1
    )
