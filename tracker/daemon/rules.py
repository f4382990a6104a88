"""The per-task polling rules (docs/failures.md): what one answer does to the task that was
polled, as a pure function of the task, the answer, the time and the timing policy; and how a
poll is counted (its outcome)."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property

from tracker.core.backoff import Backoff
from tracker.core.models import Answer, ClaimedTask, FetchResult, FinishReason, PollRecord
from tracker.core.texts import error_line
from tracker.core.video import Phase

NOT_FOUND_LIMIT = 3
# Time allowed between a request's end and the write of its result (a tick, a slow commit).
WRITE_MARGIN = timedelta(seconds=5)
JITTER = 0.10
BACKOFF_CAP_INTERVALS = 10.0
# Compared by identity for every poll: before Python 3.12, hashing an enum member and reading
# one off its class both run Python code.
_SUCCEEDED, _FAILED = Phase.SUCCEEDED, Phase.FAILED
_COMPLETED, _FAILED_REASON = FinishReason.COMPLETED, FinishReason.FAILED


@dataclass(frozen=True)
class Policy:
    """The timing rules, from the settings."""

    interval: float
    give_up_after: float
    request_timeout: float

    @cached_property
    def backoff(self) -> Backoff:
        """A failing task's wait: 1 to 2 intervals after the first failure, doubling, at most ten
        intervals (random within the upper half of each step)."""
        return Backoff(2 * self.interval, self.interval * BACKOFF_CAP_INTERVALS, jitter=0.5)

    @cached_property
    def lease(self) -> timedelta:
        """How long a claim holds: room to start the request, its whole timeout, and the write.
        A daemon that dies loses its claims this long after making them: a minute with the
        default 30 s timeout."""
        return timedelta(seconds=max(2 * self.request_timeout, self.request_timeout + 10.0))

    @cached_property
    def start_window(self) -> timedelta:
        """A claimed task whose request has not started this long after the claim is given back,
        so the request and the write of its result both end inside the lease."""
        return self.lease - timedelta(seconds=self.request_timeout) - WRITE_MARGIN

    def next_interval(self, rng: random.Random) -> float:
        return self.interval * rng.uniform(1 - JITTER, 1 + JITTER)


def describe_error(fetch: FetchResult) -> str:
    """One line for ``tasks.last_error``."""
    return error_line(fetch.error, fetch.http_status)


def decide(
    task: ClaimedTask,
    fetch: FetchResult,
    polled_at: datetime,
    policy: Policy,
    rng: random.Random,
) -> PollRecord:
    """What one answer does to the task that was polled."""
    answered_at = polled_at + timedelta(milliseconds=fetch.latency_ms)
    timed_out = answered_at - task.watched_since >= timedelta(seconds=policy.give_up_after)
    video = fetch.video
    answer = fetch.answer
    not_found_count = task.not_found_count + 1 if answer is Answer.NOT_FOUND else 0
    if video is not None:
        # Success keeps the rhythm: the next poll is one interval after this one was sent.
        error_count, next_poll_at = 0, polled_at + timedelta(seconds=policy.next_interval(rng))
        phase = video.phase
        reason = _COMPLETED if phase is _SUCCEEDED else _FAILED_REASON if phase is _FAILED else None
    elif answer is Answer.REFUSED:
        # The account's trouble, not the task's: no per-task back-off; the pause covers all.
        error_count = task.error_count
        next_poll_at = answered_at + timedelta(seconds=policy.next_interval(rng))
        reason = None
    elif answer is Answer.NOT_FOUND:
        # A task just created may not be visible yet on every replica: poll at the usual pace.
        error_count = task.error_count + 1
        next_poll_at = answered_at + timedelta(seconds=policy.next_interval(rng))
        reason = FinishReason.NOT_FOUND if not_found_count >= NOT_FOUND_LIMIT else None
    else:
        error_count = task.error_count + 1
        next_poll_at = answered_at + timedelta(seconds=policy.backoff.delay(error_count - 1, rng))
        reason = None
    if reason is None and timed_out:
        reason = FinishReason.TIMED_OUT
    # Waits the API asks for count from when its answer arrived.
    asked_wait = max(fetch.poll_after or 0.0, fetch.retry_after or 0.0)
    return PollRecord(
        task_id=task.task_id,
        polled_at=polled_at,
        fetch=fetch,
        next_poll_at=max(next_poll_at, answered_at + timedelta(seconds=asked_wait)),
        error_count=error_count,
        not_found_count=not_found_count,
        last_error=None if video is not None else describe_error(fetch),
        finish_reason=reason,
        kept=worth_keeping(task, video.status if video else None, reason is not None),
    )


def worth_keeping(task: ClaimedTask, status: str | None, finishes: bool) -> bool:
    """Whether the snapshot of a poll showing ``status`` is one retention never drops: the
    task's first, the one that finishes it, or one whose status differs from the snapshot
    before it (an error's snapshot has none: the task's last error says the last one was)."""
    before = None if task.last_error is not None else task.status
    return task.poll_count == 0 or finishes or status != before


def changed(task: ClaimedTask, record: PollRecord) -> bool:
    """Whether a poll showed something new: another status, progress or error (the ``changes``
    recording mode stores only those, and the poll that finished the task)."""
    if record.finished:
        return True
    video = record.fetch.video
    if video is None:
        return record.last_error != task.last_error
    progress_moved = video.progress is not None and video.progress != task.progress
    return video.status != task.status or progress_moved or task.last_error is not None


class PollOutcome(enum.StrEnum):
    """How a poll is counted (the ``outcome`` label of ``tracker_polls_total``)."""

    OK = "ok"
    FINISHED = "finished"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    INVALID_ANSWER = "invalid_answer"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"

    @classmethod
    def of(cls, record: PollRecord) -> PollOutcome:
        answer = record.fetch.answer
        if answer is Answer.VIDEO:
            return cls.FINISHED if record.finished else cls.OK
        return cls(answer.value)


def due_at_once(record: PollRecord, now: datetime) -> PollRecord:
    """``record`` written due at ``now`` (unless it finished or is due by then): a webhook said
    its task changed while the poll was under way or its result waited."""
    if record.finished or record.next_poll_at <= now:
        return record
    return replace(record, next_poll_at=now)
