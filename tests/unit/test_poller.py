"""Polling rules (SPEC §6), on an in-memory repository, a scripted API and a set clock."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tracker.core.models import ClaimedTask, FetchResult, FinishReason, FollowUps, PollRecord
from tracker.core.video import Video
from tracker.daemon.poller import Policy, Poller, decide
from tracker.testing import InMemoryRepository

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(interval=10.0, give_up_after=3600.0, request_timeout=5.0)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def ok(status: str = "in_progress", progress: int | None = 50, **headers: float) -> FetchResult:
    return FetchResult(
        200, 1.0, f'{{"status": "{status}"}}', Video(status, progress), None, **headers
    )


def http_error(status: int, **headers: float) -> FetchResult:
    return FetchResult(status, 1.0, None, None, {"message": f"HTTP {status}"}, **headers)


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


def claimed(
    task_id: str = "t1", errors: int = 0, not_found: int = 0, registered_at: datetime = START
) -> ClaimedTask:
    return ClaimedTask(task_id, registered_at, errors, not_found)


# decide(): the per-task rules


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("completed", FinishReason.COMPLETED),
        ("SUCCESS", FinishReason.COMPLETED),
        ("failed", FinishReason.FAILED),
        ("cancelled", FinishReason.FAILED),
        ("in_progress", None),
        ("unknown", None),
    ],
)
def test_terminal_statuses_finish_the_task_and_others_do_not(
    status: str, reason: FinishReason | None
) -> None:
    """A terminal status sets finish_reason; a running one leaves the task unfinished."""
    record = decide(claimed(), ok(status), START, POLICY, random.Random(1))
    assert record.finish_reason is reason
    assert record.finished is (reason is not None)


def test_next_poll_is_one_interval_away_within_ten_percent_jitter() -> None:
    """Running tasks come due again after the interval, spread by at most ±10%."""
    rng = random.Random(7)
    waits = [
        (decide(claimed(), ok(), START, POLICY, rng).next_poll_at - START).total_seconds()
        for _ in range(500)
    ]
    assert min(waits) >= 9.0 and max(waits) <= 11.0
    assert max(waits) - min(waits) > 1.0  # really spread, not a constant


def test_openai_poll_after_ms_is_never_undercut() -> None:
    """A poll-after wait longer than the interval sets the next poll."""
    record = decide(claimed(), ok(poll_after=42.0), START, POLICY, random.Random(1))
    answered_at = START + timedelta(milliseconds=1)
    assert record.next_poll_at == answered_at + timedelta(seconds=42)


def test_waits_asked_by_the_api_count_from_when_its_answer_arrived() -> None:
    """A Retry-After that came back after a slow answer is counted from the answer, not the
    request: nothing is sent before it has really elapsed."""
    slow = FetchResult(503, 20_000.0, None, None, {"message": "busy"}, retry_after=3.0)
    record = decide(claimed(), slow, START, POLICY, random.Random(1))
    assert record.next_poll_at >= START + timedelta(seconds=23)


def test_a_success_resets_the_error_counters() -> None:
    """error_count and not_found_count are consecutive counts: one good answer clears them."""
    record = decide(claimed(errors=4, not_found=2), ok(), START, POLICY, random.Random(1))
    assert (record.error_count, record.not_found_count, record.last_error) == (0, 0, None)


def test_three_404s_in_a_row_finish_the_task_as_not_found() -> None:
    """The first two 404s keep polling at the usual pace; the third finishes the task."""
    rng = random.Random(1)
    first = decide(claimed(), http_error(404), START, POLICY, rng)
    second = decide(claimed(errors=1, not_found=1), http_error(404), START, POLICY, rng)
    third = decide(claimed(errors=2, not_found=2), http_error(404), START, POLICY, rng)
    assert (first.not_found_count, first.finish_reason) == (1, None)
    assert (second.not_found_count, second.finish_reason) == (2, None)
    assert (third.not_found_count, third.finish_reason) == (3, FinishReason.NOT_FOUND)
    assert (first.next_poll_at - START).total_seconds() <= 11.0


def test_another_error_between_404s_breaks_the_row() -> None:
    """A 500 after two 404s resets the 404 count: the task is not finished as not_found."""
    record = decide(
        claimed(errors=2, not_found=2), http_error(500), START, POLICY, random.Random(1)
    )
    assert record.not_found_count == 0
    assert record.finish_reason is None


def test_errors_back_off_exponentially_up_to_ten_intervals() -> None:
    """Consecutive failures wait longer each time, never past 10 x interval."""
    rng = random.Random(3)
    ceilings = []
    for errors in range(8):
        waits = [
            (
                decide(claimed(errors=errors), http_error(500), START, POLICY, rng).next_poll_at
                - START
            ).total_seconds()
            for _ in range(200)
        ]
        ceilings.append(max(waits))
        assert max(waits) <= 10 * POLICY.interval
    assert ceilings[0] < ceilings[1] < ceilings[2]
    assert ceilings[-1] > 9 * POLICY.interval


def test_retry_after_sets_the_next_poll_of_that_task() -> None:
    """A 503 with Retry-After is not polled before the wait the API asked for."""
    record = decide(claimed(), http_error(503, retry_after=120.0), START, POLICY, random.Random(1))
    assert record.next_poll_at >= START + timedelta(seconds=120)
    assert record.finish_reason is None


def test_a_task_past_give_up_after_is_timed_out_at_its_next_poll() -> None:
    """Unfinished past give-up-after: finished as timed_out, even when the poll failed."""
    late = START + timedelta(seconds=3601)
    assert (
        decide(claimed(), ok(), late, POLICY, random.Random(1)).finish_reason
        is FinishReason.TIMED_OUT
    )
    assert (
        decide(claimed(), http_error(500), late, POLICY, random.Random(1)).finish_reason
        is FinishReason.TIMED_OUT
    )
    assert (
        decide(claimed(), ok("completed"), late, POLICY, random.Random(1)).finish_reason
        is FinishReason.COMPLETED
    )


# Poller: claiming, batching, account-wide rules


def make_poller(
    repository: InMemoryRepository, api: ScriptedAPI, clock: FakeClock, concurrency: int = 4
) -> Poller:
    return Poller(
        repository,
        api,
        policy=POLICY,
        owner="test-daemon",
        concurrency=concurrency,
        clock=clock,
        rng=random.Random(5),
    )


def run_pass(poller: Poller, all_unfinished: bool = False) -> None:
    async def go() -> None:
        await poller.poll_pass(all_unfinished)

    asyncio.run(go())


def test_a_pass_polls_each_due_task_once_and_writes_one_snapshot_each() -> None:
    """`poll`: every due task is asked once, and each answer becomes one snapshot."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks([f"t{i}" for i in range(20)], None, START)
    api = ScriptedAPI()
    poller = make_poller(repository, api, clock)
    run_pass(poller)
    poller.close()
    assert set(api.calls.values()) == {1}
    assert len(api.calls) == 20
    assert all(len(repository.history(f"t{i}")) == 1 for i in range(20))
    assert api.overlaps == 0
    assert api.max_in_flight <= 4


def test_a_pass_skips_tasks_not_due_unless_all_is_asked() -> None:
    """A task polled a moment ago is left alone by `poll` but polled by `poll --all`."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks(["a", "b"], None, START)
    api = ScriptedAPI()

    async def scenario() -> None:
        poller = make_poller(repository, api, clock)
        await poller.poll_pass()
        clock.advance(1)
        await poller.poll_pass()
        assert api.calls == Counter({"a": 1, "b": 1})
        clock.advance(1)
        await poller.poll_pass(all_unfinished=True)
        poller.close()

    asyncio.run(scenario())
    assert api.calls == Counter({"a": 2, "b": 2})


def test_finished_tasks_are_never_polled_again() -> None:
    """Once a task saw a terminal status it is not claimed again, however much time passes."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks(["done", "running"], None, START)
    api = ScriptedAPI({"done": [ok("completed", 100)]})

    async def scenario() -> None:
        poller = make_poller(repository, api, clock)
        for _ in range(5):
            await poller.poll_pass(all_unfinished=True)
            clock.advance(60)
        poller.close()

    asyncio.run(scenario())
    assert api.calls["done"] == 1
    assert api.calls["running"] == 5
    [done] = repository.tasks(status="completed")
    assert (done.finished, done.finish_reason, done.finished_at) == (True, "completed", START)
    assert [s.finished for s in repository.history("done")] == [True]


def test_tasks_held_by_another_daemon_are_not_polled() -> None:
    """A lease held by someone else keeps the task out of this daemon's claims."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks(["mine", "theirs"], None, START)
    repository.claim_due("other-daemon", START, START + timedelta(minutes=1), 1)
    api = ScriptedAPI()
    poller = make_poller(repository, api, clock)
    run_pass(poller)
    poller.close()
    assert set(api.calls) == {"mine"} or set(api.calls) == {"theirs"}
    assert len(api.calls) == 1


def test_results_for_a_lost_lease_are_dropped() -> None:
    """A task removed while its poll was in flight keeps no snapshot from that poll."""
    repository = InMemoryRepository()
    repository.add_tasks(["t"], None, START)
    [task] = repository.claim_due("me", START, START + timedelta(minutes=1), 10)
    repository.remove_tasks(["t"], START)
    record = decide(task, ok(), START, POLICY, random.Random(1))
    assert repository.record_polls("me", [record]) == 0
    assert repository.history("t") == []


def test_a_429_pauses_every_task_until_retry_after() -> None:
    """Rate limits belong to the account: after a 429 no task is polled until it elapses."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks([f"t{i}" for i in range(10)], None, START)
    api = ScriptedAPI(default=http_error(429, retry_after=30.0))

    async def scenario() -> None:
        poller = make_poller(repository, api, clock, concurrency=1)
        await poller.poll_pass()
        assert sum(api.calls.values()) == 1
        assert poller.paused_until == START + timedelta(seconds=30)
        unpolled = [task for task in repository.tasks() if task.poll_count == 0]
        assert len(unpolled) == 9 and all(task.lease_owner is None for task in unpolled)
        clock.advance(29)
        await poller.poll_pass()
        assert sum(api.calls.values()) == 1
        api.default = ok()
        clock.advance(2)
        await poller.poll_pass()
        poller.close()

    asyncio.run(scenario())
    assert sum(api.calls.values()) == 11


def test_401_pauses_the_daemon_with_growing_waits_and_finishes_nothing() -> None:
    """A refused token backs the whole daemon off, capped at 5 minutes; no task finishes."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks(["a", "b"], None, START)
    api = ScriptedAPI(default=http_error(401))
    pauses = []

    async def scenario() -> None:
        poller = make_poller(repository, api, clock, concurrency=1)
        for _ in range(8):
            await poller.poll_pass(all_unfinished=True)
            assert poller.paused_until is not None
            pauses.append((poller.paused_until - clock.now()).total_seconds())
            clock.current = poller.paused_until
        poller.close()

    asyncio.run(scenario())
    assert pauses[:4] == [10.0, 20.0, 40.0, 80.0]
    assert max(pauses) == 300.0
    assert not any(task.finished for task in repository.tasks())
    assert all(task.error_count == 0 for task in repository.tasks())


def test_a_refused_token_pause_is_stored_for_every_task() -> None:
    """After a 401 every unfinished task waits out the pause in next_poll_at, so a restart or
    a `tracker poll` does not ask the API again before it ends (SPEC §6.3)."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks([f"t{i}" for i in range(5)], None, START)
    api = ScriptedAPI(default=http_error(401))
    poller = make_poller(repository, api, clock, concurrency=1)
    try:
        asyncio.run(poller.poll_pass())
    finally:
        poller.close()
    assert sum(api.calls.values()) == 1
    assert poller.paused_until is not None
    assert all(task.next_poll_at >= poller.paused_until for task in repository.tasks())
    unpolled = [task for task in repository.tasks() if task.poll_count == 0]
    assert len(unpolled) == 4 and {task.next_poll_at for task in unpolled} == {poller.paused_until}


def test_tick_claims_due_tasks_and_the_next_tick_writes_them() -> None:
    """The daemon's tick starts polls without waiting for them; a later tick writes them."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks(["a", "b", "c"], None, START)
    api = ScriptedAPI()
    poller = make_poller(repository, api, clock)

    async def go() -> None:
        await poller.tick()
        assert poller.busy
        while poller.busy:
            await asyncio.sleep(0)
            await poller.tick()

    asyncio.run(go())
    poller.close()
    assert {task.task_id: task.poll_count for task in repository.tasks()} == {
        "a": 1,
        "b": 1,
        "c": 1,
    }


def test_drain_gives_back_tasks_that_never_started() -> None:
    """On shutdown, claimed tasks whose request never started are released at once."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks([f"t{i}" for i in range(8)], None, START)
    gate = asyncio.Event()

    class BlockedAPI(ScriptedAPI):
        async def fetch(self, task_id: str) -> FetchResult:
            self.calls[task_id] += 1
            await gate.wait()
            return ok()

    api = BlockedAPI()
    poller = make_poller(repository, api, clock, concurrency=2)

    async def go() -> None:
        await poller.tick()
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        await poller.drain(timeout=5)

    asyncio.run(go())
    poller.close()
    tasks = repository.tasks()
    assert sum(task.poll_count for task in tasks) == 2
    assert all(task.lease_owner is None for task in tasks)


def test_finishes_owe_notifications_and_completions_owe_downloads() -> None:
    """With follow-ups configured, a completed task owes its files and an event per channel;
    one finished by three 404s owes an event describing what it last showed; the sweep's
    timed-out tasks owe events too."""
    repository, clock = InMemoryRepository(), FakeClock()
    repository.add_tasks(["done", "gone", "slow"], None, START)
    api = ScriptedAPI(
        {
            "done": [ok("completed", 100)],
            "gone": [ok("in_progress", 40)] + [http_error(404)] * 3,
            "slow": [ok("in_progress", 10)],
        }
    )
    follow_ups = FollowUps(variants=("video",), channels=("webhook", "command"))

    async def scenario() -> None:
        poller = Poller(
            repository,
            api,
            policy=POLICY,
            owner="d",
            clock=clock,
            rng=random.Random(1),
            follow_ups=follow_ups,
        )
        for _ in range(4):
            await poller.poll_pass(all_unfinished=True)
            clock.advance(20)
        clock.advance(3600)
        await poller.sweep()
        poller.close()

    asyncio.run(scenario())
    events = {(e.channel, e.payload["task_id"]): e.payload for e in repository.events}
    assert set(events) == {(c, t) for c in ("webhook", "command") for t in ("done", "gone", "slow")}
    assert events[("webhook", "done")]["finish_reason"] == "completed"
    assert events[("webhook", "gone")]["finish_reason"] == "not_found"
    assert (events[("webhook", "gone")]["status"], events[("webhook", "gone")]["progress"]) == (
        "in_progress",
        40,
    )
    assert events[("webhook", "gone")]["video"] is None
    assert events[("command", "slow")]["finish_reason"] == "timed_out"
    assert len({e.event_id for e in repository.events}) == 6


class StuckClaims(InMemoryRepository):
    """Claims that hang until released, as a query on a dead connection does."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def claim_due(self, *args: Any, **kwargs: Any) -> list[ClaimedTask]:
        self.entered.set()
        self.release.wait(10)
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


def test_a_tick_stuck_on_the_database_is_not_counted_as_ticking() -> None:
    """Ticks that skip because a database call hangs say nothing to the observer (/healthz
    then reports a stall); the tick counts once the call returns."""
    repository = StuckClaims()
    observer = CountingObserver()
    poller = Poller(
        repository, ScriptedAPI(), policy=POLICY, owner="d", clock=FakeClock(), observer=observer
    )

    async def scenario() -> tuple[int, int]:
        stuck = asyncio.create_task(poller.tick())
        await asyncio.to_thread(repository.entered.wait, 5)
        await poller.tick()  # overlaps the stuck one: skipped
        while_stuck = observer.ticks
        repository.release.set()
        await stuck
        return while_stuck, observer.ticks

    try:
        assert asyncio.run(scenario()) == (0, 1)
    finally:
        poller.close()


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
def test_a_webhook_during_a_poll_keeps_the_task_due(news_arrives: str) -> None:
    """poll_soon while a poll of the task is in flight, or its result not yet written: the
    result keeps the task due at once instead of an interval away."""
    repository = InMemoryRepository()
    repository.add_tasks(["t1"], None, START)
    api = GatedAPI()
    clock = FakeClock()
    poller = Poller(repository, api, policy=POLICY, owner="d", clock=clock)

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

    try:
        asyncio.run(scenario())
    finally:
        poller.close()
    [task] = repository.tasks()
    assert task.poll_count == 1
    assert task.next_poll_at == START


def test_without_news_a_poll_puts_the_task_an_interval_away() -> None:
    """The control for the test above: the same poll, no webhook, next poll an interval on."""
    repository = InMemoryRepository()
    repository.add_tasks(["t1"], None, START)
    poller = make_poller(repository, ScriptedAPI(), FakeClock())
    try:
        run_pass(poller)
    finally:
        poller.close()
    [task] = repository.tasks()
    assert task.next_poll_at >= START + timedelta(seconds=POLICY.interval * 0.5)
