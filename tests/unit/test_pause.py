"""The account-wide pauses (docs/failures.md): a rate limit or a refused token stops every task,
not just the one that met it. AccountPause alone, on a set clock, fed poll records by hand."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from tests.doubles import START, FakeClock
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import Failure, FetchResult, PollRecord
from tracker.core.pauses import Pause, PauseReason
from tracker.core.video import Video
from tracker.daemon.pause import AUTH_BACKOFF_CAP, AccountPause
from tracker.daemon.rules import Policy

POLICY = Policy(interval=10.0, give_up_after=3600.0, request_timeout=5.0)


def answer(
    http_status: int,
    polled_at: datetime,
    *,
    retry_after: float | None = None,
    next_poll_in: float = 10.0,
    error_count: int = 1,
) -> PollRecord:
    """The record of a poll sent at ``polled_at``: a running video for 200, else an error."""
    if http_status == 200:
        fetch = FetchResult(200, 1.0, '{"status": "in_progress"}', Video("in_progress", 50), None)
        error_count = 0
    else:
        fetch = FetchResult.failed(
            Failure.HTTP_STATUS,
            f"HTTP {http_status}",
            1.0,
            http_status=http_status,
            retry_after=retry_after,
        )
    return PollRecord(
        task_id="t1",
        polled_at=polled_at,
        fetch=fetch,
        next_poll_at=polled_at + timedelta(seconds=next_poll_in),
        error_count=error_count,
        not_found_count=0,
        last_error=None,
        finish_reason=None,
    )


def make_pause(clock: FakeClock) -> tuple[AccountPause, list[datetime]]:
    """An AccountPause and the ends of the pauses it asked to store."""
    postponed: list[datetime] = []
    pause = AccountPause(
        POLICY, clock, random.Random(1), lambda p: postponed.append(p.paused_until)
    )
    return pause, postponed


def seconds_left(pause: AccountPause, clock: FakeClock) -> float:
    assert pause.until is not None
    return (pause.until - clock.now()).total_seconds()


def test_nothing_pauses_before_a_refusal_or_a_rate_limit() -> None:
    """Good answers and the task's own errors leave the account free to poll."""
    clock = FakeClock()
    pause, postponed = make_pause(clock)
    for status in (200, 500, 404, 400):
        record = answer(status, clock.now())
        assert pause.apply(record) == record
    assert pause.until is None and not pause.active(clock.now())
    assert postponed == []


def test_a_429_with_retry_after_pauses_every_task_from_the_answer() -> None:
    """The Retry-After of a 429 counts from when the answer came back, and holds for the whole
    account: active until then, not a moment after."""
    clock = FakeClock()
    pause, postponed = make_pause(clock)
    clock.advance(2)  # the answer arrives two seconds after the request was sent
    pause.apply(answer(429, START, retry_after=30.0))
    assert pause.until == START + timedelta(seconds=32)
    assert pause.active(START + timedelta(seconds=31.9))
    assert not pause.active(START + timedelta(seconds=32))
    assert postponed == [pause.until]
    assert pause.auth_failures == 0


def test_a_429_without_retry_after_waits_the_tasks_backoff() -> None:
    """Without Retry-After the pause is the task's own back-off step: one to two intervals
    after a first failure."""
    clock = FakeClock()
    pause, _ = make_pause(clock)
    pause.apply(answer(429, START, error_count=1))
    assert POLICY.interval <= seconds_left(pause, clock) <= 2 * POLICY.interval


@pytest.mark.parametrize("status", [401, 403])
def test_refused_tokens_pause_with_doubling_waits_capped_at_five_minutes(status: int) -> None:
    """Each refusal of a request sent after the previous one pauses the account one interval,
    then twice as long each time, never over 300 s."""
    clock = FakeClock()
    pause, _ = make_pause(clock)
    waits = []
    for attempt in range(1, 9):
        sent = clock.now()
        clock.advance(0.5)
        pause.apply(answer(status, sent))
        assert pause.auth_failures == attempt
        waits.append(seconds_left(pause, clock))
        assert pause.until is not None
        clock.current = pause.until
    assert waits == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    assert AUTH_BACKOFF_CAP == 300.0


def test_requests_in_flight_when_the_token_was_refused_are_not_new_refusals() -> None:
    """Answers to requests sent before the first refusal came back say nothing new about the
    token: neither a second 401 nor a success among them changes the pause or its count; the
    next request sent after it does."""
    clock = FakeClock()
    pause, _ = make_pause(clock)
    clock.advance(1)
    pause.apply(answer(401, START))
    until = START + timedelta(seconds=11)
    assert (pause.auth_failures, pause.until) == (1, until)
    clock.advance(1)
    pause.apply(answer(401, START))
    clock.advance(1)
    pause.apply(answer(200, START))
    assert (pause.auth_failures, pause.until) == (1, until)
    clock.current = until
    pause.apply(answer(401, until))
    assert pause.auth_failures == 2
    assert seconds_left(pause, clock) == 20.0


def test_a_good_answer_after_the_pause_resets_the_refusal_count() -> None:
    """A success to a request sent after the last refusal means the token works again: the
    next refusal starts over at one interval."""
    clock = FakeClock()
    pause, _ = make_pause(clock)
    for _ in range(3):
        pause.apply(answer(401, clock.now()))
        assert pause.until is not None
        clock.current = pause.until
    assert pause.auth_failures == 3
    pause.apply(answer(200, clock.now()))
    assert pause.auth_failures == 0
    clock.advance(1)
    pause.apply(answer(401, clock.now()))
    assert (pause.auth_failures, seconds_left(pause, clock)) == (1, 10.0)


def test_records_are_pushed_to_the_end_of_a_pause_in_force() -> None:
    """The task that met the pause, and any answer that arrives during it, is not due before
    the pause ends; a record already due later keeps its time."""
    clock = FakeClock()
    pause, _ = make_pause(clock)
    met = pause.apply(answer(429, START, retry_after=60.0, next_poll_in=5.0))
    end = START + timedelta(seconds=60)
    assert met.next_poll_at == end
    assert pause.apply(answer(200, START, next_poll_in=10.0)).next_poll_at == end
    assert pause.apply(answer(200, START, next_poll_in=90.0)).next_poll_at == START + timedelta(
        seconds=90
    )


def test_the_postpone_callback_is_told_each_pause_and_a_shorter_one_does_not_shorten_it() -> None:
    """Every pause is handed to ``postpone`` (stored in each task's next_poll_at); a later,
    shorter pause never brings the end of the one in force forward."""
    clock = FakeClock()
    pause, postponed = make_pause(clock)
    pause.apply(answer(429, START, retry_after=60.0))
    clock.advance(1)
    pause.apply(answer(429, clock.now(), retry_after=5.0))
    end = START + timedelta(seconds=60)
    assert pause.until == end
    assert postponed[0] == end
    assert max(postponed) == end
    assert len(postponed) == 2


def test_each_pause_is_stored_with_its_provider_reason_refusals_and_time() -> None:
    """What ``postpone`` is handed is the row of ``pauses``: the provider, the end, why
    (rate_limited or refused), the refusals in a row so far, and when it was decided."""
    clock = FakeClock()
    stored: list[Pause] = []
    pause = AccountPause(POLICY, clock, random.Random(1), stored.append, provider="relay")
    clock.advance(1)
    pause.apply(answer(429, START, retry_after=30.0))
    clock.current = START + timedelta(seconds=40)
    pause.apply(answer(401, clock.now()))
    clock.advance(10)
    pause.apply(answer(401, clock.now()))
    assert stored == [
        Pause(
            "relay",
            START + timedelta(seconds=31),
            PauseReason.RATE_LIMITED,
            0,
            START + timedelta(seconds=1),
        ),
        Pause(
            "relay",
            START + timedelta(seconds=50),
            PauseReason.REFUSED,
            1,
            START + timedelta(seconds=40),
        ),
        Pause(
            "relay",
            START + timedelta(seconds=70),
            PauseReason.REFUSED,
            2,
            START + timedelta(seconds=50),
        ),
    ]


def test_a_stored_pause_is_carried_on_by_a_daemon_starting() -> None:
    """A pause read back at start holds the daemon until it ends, without counting its
    refusals again; another provider's does not hold it."""
    clock = FakeClock()
    pause, _ = make_pause(clock)
    until = START + timedelta(seconds=90)
    pause.restore(Pause("other", until, PauseReason.REFUSED, 4, START))
    assert not pause.active(START)
    pause.restore(Pause(DEFAULT_PROVIDER, until, PauseReason.REFUSED, 4, START))
    assert pause.active(until - timedelta(seconds=1)) and not pause.active(until)
    assert pause.auth_failures == 0
    clock.advance(1)
    pause.apply(answer(401, clock.now()))
    assert (pause.auth_failures, pause.until) == (1, until)


def test_a_pause_decided_later_wins_when_it_ends_later() -> None:
    """Pause.then: the end that comes last, with its reason; an earlier end never shortens a
    pause, though its refusals are noted."""
    first = Pause("p", START + timedelta(seconds=60), PauseReason.RATE_LIMITED, 0, START)
    shorter = Pause(
        "p", START + timedelta(seconds=20), PauseReason.REFUSED, 1, START + timedelta(seconds=5)
    )
    longer = Pause(
        "p", START + timedelta(seconds=90), PauseReason.REFUSED, 2, START + timedelta(seconds=5)
    )
    after = Pause(
        "p", START + timedelta(seconds=80), PauseReason.REFUSED, 3, START + timedelta(seconds=70)
    )
    kept = first.then(shorter)
    assert (kept.paused_until, kept.reason, kept.refusals) == (
        first.paused_until,
        PauseReason.RATE_LIMITED,
        1,
    )
    assert first.then(longer) == longer
    assert first.then(after) == after


@pytest.mark.parametrize(
    ("provider", "named", "refusal", "rate_limit"),
    [
        (
            DEFAULT_PROVIDER,
            False,
            "the API refused the token (HTTP 401): pausing every task for 10s (attempt 1); "
            "check TRACKER_API_TOKEN",
            "the API answered 429 (rate limited): pausing every task for 30s",
        ),
        (
            DEFAULT_PROVIDER,
            True,
            "the API of provider 'default' refused the token (HTTP 401): pausing its tasks "
            "for 10s (attempt 1); check its token",
            "the API of provider 'default' answered 429 (rate limited): pausing its tasks for 30s",
        ),
        (
            "relay-b",
            False,
            "the API of provider 'relay-b' refused the token (HTTP 401): pausing its tasks "
            "for 10s (attempt 1); check its token",
            "the API of provider 'relay-b' answered 429 (rate limited): pausing its tasks for 30s",
        ),
    ],
)
def test_the_log_line_of_a_pause_says_whose_api_and_which_tasks(
    provider: str, named: bool, refusal: str, rate_limit: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a providers file the lines read as they always did; with one (``named``, and
    always for a provider other than default) they say whose API spoke, that its tasks wait,
    and not to look at TRACKER_API_TOKEN."""
    clock = FakeClock()
    pause = AccountPause(POLICY, clock, random.Random(1), lambda p: None, provider, named)
    with caplog.at_level("WARNING", logger="tracker"):
        pause.apply(answer(401, clock.now()))
        clock.advance(60)
        pause.apply(answer(429, clock.now(), retry_after=30.0))
    assert [record.getMessage() for record in caplog.records] == [refusal, rate_limit]
