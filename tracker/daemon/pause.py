"""Rules that span tasks: rate limits and refused tokens belong to the account, so they pause
every task (docs/failures.md), and the task that met them waits at least as long."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from tracker.core.backoff import Backoff
from tracker.core.clock import Clock
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import Answer, PollRecord
from tracker.core.pauses import Pause, PauseReason
from tracker.daemon.rules import Policy

logger = logging.getLogger(__name__)

AUTH_BACKOFF_CAP = 300.0


class AccountPause:
    """When a provider's API may be asked again. A pause is also handed to ``postpone`` so that
    it is stored (in ``pauses`` and in every task's ``next_poll_at``): neither a restart nor a
    ``tracker poll`` asks the API before it ends, and every command can say why."""

    def __init__(
        self,
        policy: Policy,
        clock: Clock,
        rng: random.Random,
        postpone: Callable[[Pause], None],
        provider: str = DEFAULT_PROVIDER,
        named: bool = False,
    ) -> None:
        self.provider = provider
        # With a providers file even `default` is one provider among others, its token its own.
        self._named = named or provider != DEFAULT_PROVIDER
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._postpone = postpone
        self._auth_backoff = Backoff(policy.interval, AUTH_BACKOFF_CAP)
        self.until: datetime | None = None
        self.auth_failures = 0  # consecutive refusals of the token (401/403)
        self._refused_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.until is not None and now < self.until

    def apply(self, record: PollRecord) -> PollRecord:
        """Count the answer against the account's rules; the record, its next poll no earlier
        than the end of a pause in force."""
        status = record.fetch.http_status
        answer = record.fetch.answer
        # Requests already in flight when a refusal came back say nothing new about the token.
        sent_before_refusal = self._refused_at is not None and record.polled_at <= self._refused_at
        if answer is Answer.REFUSED and not sent_before_refusal:
            self.auth_failures += 1
            self._refused_at = self._clock.now()
            delay = self._auth_backoff.delay(self.auth_failures - 1)
            self._pause(self._refused_at + timedelta(seconds=delay), PauseReason.REFUSED)
            the_api, tasks = self._whose()
            logger.error(
                "%s refused the token (HTTP %s): pausing %s for %gs (attempt %d); check %s",
                the_api,
                status,
                tasks,
                delay,
                self.auth_failures,
                "its token" if self._named else "TRACKER_API_TOKEN",
            )
        elif answer is Answer.RATE_LIMITED:
            wait = record.fetch.retry_after
            if wait is None:
                wait = self._policy.backoff.delay(record.error_count - 1, self._rng)
            # Counted from the answer.
            self._pause(self._clock.now() + timedelta(seconds=wait), PauseReason.RATE_LIMITED)
            the_api, tasks = self._whose()
            logger.warning(
                "%s answered 429 (rate limited): pausing %s for %gs", the_api, tasks, wait
            )
        elif answer is Answer.VIDEO and not sent_before_refusal:
            self.auth_failures = 0
            self._refused_at = None
        if self.until is not None and record.next_poll_at < self.until:
            return replace(record, next_poll_at=self.until)
        return record

    def _whose(self) -> tuple[str, str]:
        """Whose API spoke and which tasks wait, for a log line."""
        if not self._named:
            return "the API", "every task"
        return f"the API of provider {self.provider!r}", "its tasks"

    def restore(self, pause: Pause) -> None:
        """Carry on with a stored pause still in force (a daemon starting): no request before
        it ends. Its refusals are not counted again: the back-off starts over."""
        if pause.provider == self.provider and (
            self.until is None or pause.paused_until > self.until
        ):
            self.until = pause.paused_until

    def _pause(self, until: datetime, reason: PauseReason) -> None:
        if self.until is None or until > self.until:
            self.until = until
        now = self._clock.now()
        self._postpone(Pause(self.provider, until, reason, self.auth_failures, now))
