"""The per-task polling rules (docs/failures.md) and the one back-off rule, as pure functions of
a task, an answer, the time and a seeded random source: no storage, no clock, no network."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.doubles import START, http_error, ok
from tracker.core.backoff import Backoff
from tracker.core.models import ClaimedTask, Failure, FetchResult, FinishReason
from tracker.daemon import downloads, notify
from tracker.daemon.rules import (
    NOT_FOUND_LIMIT,
    Policy,
    PollOutcome,
    changed,
    decide,
    worth_keeping,
)

POLICY = Policy(interval=10.0, give_up_after=3600.0, request_timeout=5.0)


def claimed(
    errors: int = 0,
    not_found: int = 0,
    *,
    status: str | None = None,
    progress: int | None = None,
    last_error: str | None = None,
) -> ClaimedTask:
    """Task t1, registered and due at START, having shown ``status``/``progress``/``last_error``."""
    return ClaimedTask("t1", START, errors, not_found, START, status, progress, last_error)


def wait_of(task: ClaimedTask, fetch: FetchResult, rng: random.Random) -> float:
    """Seconds from the poll to the next one that decide() sets."""
    return (decide(task, fetch, START, POLICY, rng).next_poll_at - START).total_seconds()


# decide(): what one answer does to its task


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
    waits = [wait_of(claimed(), ok(), rng) for _ in range(500)]
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
    slow = FetchResult.failed(
        Failure.HTTP_STATUS, "busy", 20_000.0, http_status=503, retry_after=3.0
    )
    record = decide(claimed(), slow, START, POLICY, random.Random(1))
    assert record.next_poll_at >= START + timedelta(seconds=23)


def test_a_success_resets_the_error_counters() -> None:
    """error_count and not_found_count are consecutive counts: one good answer clears them."""
    record = decide(claimed(errors=4, not_found=2), ok(), START, POLICY, random.Random(1))
    assert (record.error_count, record.not_found_count, record.last_error) == (0, 0, None)


def test_three_404s_in_a_row_finish_the_task_as_not_found() -> None:
    """The first two 404s keep polling at the usual pace; the third finishes the task."""
    assert NOT_FOUND_LIMIT == 3
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
    """Consecutive failures wait longer each time, never past 10 x interval; the first failure
    waits one to two intervals."""
    rng = random.Random(3)
    ceilings, floors = [], []
    for errors in range(8):
        waits = [wait_of(claimed(errors=errors), http_error(500), rng) for _ in range(200)]
        ceilings.append(max(waits))
        floors.append(min(waits))
        assert max(waits) <= 10 * POLICY.interval
    assert POLICY.interval <= floors[0] and ceilings[0] <= 2 * POLICY.interval + 0.01
    assert ceilings[0] < ceilings[1] < ceilings[2]
    assert ceilings[-1] > 9 * POLICY.interval


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_not_the_tasks_fault(status: int) -> None:
    """401/403 belong to the account (the pause handles them): the task's error count does not
    grow and its next poll stays one interval away, with the error kept for `tracker show`."""
    record = decide(claimed(errors=2), http_error(status), START, POLICY, random.Random(1))
    assert record.error_count == 2
    assert record.finish_reason is None
    assert (record.next_poll_at - START).total_seconds() <= 11.01
    assert record.last_error == f"HTTP {status}: HTTP {status}"


def test_retry_after_sets_the_next_poll_of_that_task() -> None:
    """A 503 with Retry-After is not polled before the wait the API asked for."""
    record = decide(claimed(), http_error(503, retry_after=120.0), START, POLICY, random.Random(1))
    assert record.next_poll_at >= START + timedelta(seconds=120)
    assert record.finish_reason is None


def test_a_task_past_give_up_after_is_timed_out_at_its_next_poll() -> None:
    """Unfinished past give-up-after: finished as timed_out, even when the poll failed; a
    terminal status seen at that poll wins."""
    late = START + timedelta(seconds=3601)
    rng = random.Random(1)
    assert decide(claimed(), ok(), late, POLICY, rng).finish_reason is FinishReason.TIMED_OUT
    assert (
        decide(claimed(), http_error(500), late, POLICY, rng).finish_reason
        is FinishReason.TIMED_OUT
    )
    assert (
        decide(claimed(), ok("completed"), late, POLICY, rng).finish_reason
        is FinishReason.COMPLETED
    )


def test_a_failure_without_an_http_status_is_described_by_its_message() -> None:
    """A timeout has no HTTP status: last_error is tracker's own message, and it counts as an
    error of the task."""
    fetch = FetchResult.failed(Failure.TIMEOUT, "no answer within 5s", 5000.0)
    record = decide(claimed(), fetch, START, POLICY, random.Random(1))
    assert record.last_error == "no answer within 5s"
    assert record.error_count == 1


# Policy: leases and the start window


@pytest.mark.parametrize(
    ("timeout", "lease", "window"), [(5.0, 15.0, 5.0), (30.0, 60.0, 25.0), (60.0, 120.0, 55.0)]
)
def test_a_lease_covers_the_start_the_whole_request_and_the_write(
    timeout: float, lease: float, window: float
) -> None:
    """The lease is twice the request timeout, at least timeout + 10 s; a request may start
    within the lease less the timeout and 5 s for the write, so both end inside the lease."""
    policy = Policy(interval=10.0, give_up_after=3600.0, request_timeout=timeout)
    assert policy.lease == timedelta(seconds=lease)
    assert policy.start_window == timedelta(seconds=window)
    assert policy.start_window + timedelta(seconds=timeout) < policy.lease


def test_the_interval_is_jittered_by_at_most_ten_percent() -> None:
    """next_interval spreads polls within ±10% of the interval."""
    rng = random.Random(11)
    intervals = [POLICY.next_interval(rng) for _ in range(1000)]
    assert 9.0 <= min(intervals) < 9.1 and 10.9 < max(intervals) <= 11.0


# changed(): what `--record changes` keeps


def test_changed_sees_a_new_status_or_progress_and_a_finish() -> None:
    """Another status, progress that moved, or a finish (even one showing nothing new: the
    poll that timed the task out) count as a change."""
    task = claimed(status="in_progress", progress=50)
    rng = random.Random(1)
    late = START + timedelta(seconds=POLICY.give_up_after)
    assert changed(task, decide(task, ok("queued", 50), START, POLICY, rng))
    assert changed(task, decide(task, ok("in_progress", 60), START, POLICY, rng))
    assert changed(task, decide(task, ok("in_progress", 50), late, POLICY, rng))


def test_the_same_status_and_progress_is_no_change() -> None:
    """The same answer again, or one without progress, is not stored under `--record changes`."""
    task = claimed(status="in_progress", progress=50)
    rng = random.Random(1)
    assert not changed(task, decide(task, ok("in_progress", 50), START, POLICY, rng))
    assert not changed(task, decide(task, ok("in_progress", None), START, POLICY, rng))


def test_errors_count_as_changes_when_they_start_change_or_end() -> None:
    """A first error, another error, and the good answer after an error are changes; the same
    error again is not."""
    rng = random.Random(1)
    running = claimed(status="in_progress", progress=50)
    failing = claimed(status="in_progress", progress=50, last_error="HTTP 500: HTTP 500")
    assert changed(running, decide(running, http_error(500), START, POLICY, rng))
    assert changed(failing, decide(failing, http_error(502), START, POLICY, rng))
    assert changed(failing, decide(failing, ok("in_progress", 50), START, POLICY, rng))
    assert not changed(failing, decide(failing, http_error(500), START, POLICY, rng))


# PollOutcome: how a poll is counted


@pytest.mark.parametrize(
    ("fetch", "outcome"),
    [
        (ok(), PollOutcome.OK),
        (ok("completed", 100), PollOutcome.FINISHED),
        (http_error(404), PollOutcome.NOT_FOUND),
        (http_error(401), PollOutcome.REFUSED),
        (http_error(403), PollOutcome.REFUSED),
        (http_error(429), PollOutcome.RATE_LIMITED),
        (http_error(503), PollOutcome.SERVER_ERROR),
        (http_error(400), PollOutcome.CLIENT_ERROR),
        (
            FetchResult.failed(Failure.NOT_A_VIDEO, "no status", 1.0, http_status=200),
            PollOutcome.INVALID_ANSWER,
        ),
        (FetchResult.failed(Failure.TIMEOUT, "timed out", 1.0), PollOutcome.TIMEOUT),
        (FetchResult.failed(Failure.CONNECTION, "refused", 1.0), PollOutcome.CONNECTION_ERROR),
    ],
)
def test_each_poll_is_counted_under_one_outcome(fetch: FetchResult, outcome: PollOutcome) -> None:
    """The outcome label follows the answer: video or not, finished or not, the HTTP status,
    and for requests that got no answer, the Failure type (never the message)."""
    record = decide(claimed(), fetch, START, POLICY, random.Random(1))
    assert PollOutcome.of(record) is outcome


# Backoff: the one rule for polls, downloads, notifications and the token pause


def test_backoff_starts_at_its_first_step_and_doubles() -> None:
    """Without jitter the n-th failure in a row waits first * 2**n."""
    backoff = Backoff(first=2.0, cap=1000.0)
    assert [backoff.delay(n) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]


def test_backoff_stops_at_its_cap_however_many_failures() -> None:
    """The wait never passes the cap, even after more failures than a float can double."""
    backoff = Backoff(first=5.0, cap=300.0)
    assert backoff.delay(6) == 300.0
    assert backoff.delay(10_000) == 300.0


def test_backoff_counts_a_negative_failure_count_as_the_first() -> None:
    """A count below zero (a corrupt row) waits the first step, not less."""
    assert Backoff(first=5.0, cap=300.0).delay(-3) == 5.0


@pytest.mark.parametrize("failures", [0, 3, 20])
def test_backoff_jitter_only_shortens_the_wait_and_by_at_most_its_fraction(failures: int) -> None:
    """With jitter j the wait lies in [(1 - j) x step, step], and really varies."""
    backoff = Backoff(first=5.0, cap=300.0, jitter=0.2)
    step = Backoff(first=5.0, cap=300.0).delay(failures)
    rng = random.Random(4)
    waits = [backoff.delay(failures, rng) for _ in range(500)]
    assert step * 0.8 <= min(waits) < step * 0.82
    assert step * 0.98 < max(waits) <= step


@pytest.mark.parametrize(
    ("retry", "first", "cap"), [(downloads.RETRY, 5.0, 300.0), (notify.RETRY, 2.0, 300.0)]
)
def test_downloads_and_notifications_retry_on_the_shared_backoff(
    retry: Backoff, first: float, cap: float
) -> None:
    """Downloads retry after 5 s, notifications after 2 s, both doubling to five minutes and
    shortened by at most a fifth."""
    rng = random.Random(2)
    assert first * 0.8 <= retry.delay(0, rng) <= first
    assert first * 1.6 <= retry.delay(1, rng) <= first * 2
    assert all(cap * 0.8 <= retry.delay(30, rng) <= cap for _ in range(100))


def test_the_poll_backoff_is_the_shared_rule_on_the_interval() -> None:
    """A task's back-off is Backoff from two intervals (shortened to one to two after the first
    failure), capped at ten, random in the upper half."""
    assert POLICY.backoff == Backoff(first=20.0, cap=100.0, jitter=0.5)


@pytest.mark.parametrize(
    ("polls", "last_error", "before", "shown", "finishes", "kept"),
    [
        (0, None, None, "queued", False, True),  # the first snapshot
        (3, None, "queued", "queued", False, False),  # a repetition
        (3, None, "queued", "in_progress", False, True),  # a new status
        (3, None, "in_progress", "in_progress", True, True),  # the one that finishes it
        (3, None, "in_progress", None, False, True),  # an error after a status
        (4, "HTTP 503", "in_progress", None, False, False),  # an error after an error
        (5, "HTTP 503", "in_progress", "in_progress", False, True),  # back after errors
    ],
)
def test_a_snapshot_is_kept_as_the_pruning_rule_keeps_it(
    polls: int,
    last_error: str | None,
    before: str | None,
    shown: str | None,
    finishes: bool,
    kept: bool,
) -> None:
    """Decided as it is written: what retention never drops (docs/tables.md, snapshots)."""
    task = ClaimedTask(
        "t", START, 0, 0, START, status=before, last_error=last_error, poll_count=polls
    )
    assert worth_keeping(task, shown, finishes) is kept
