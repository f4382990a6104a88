"""A provider's API paused as a whole (a rate limit, a refused token): the record of the
``pauses`` table, how two pauses add up, and how one reads for people (docs/failures.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tracker.core.ids import DEFAULT_PROVIDER


class PauseReason(enum.StrEnum):
    """Why a provider's API is paused as a whole (the ``reason`` column of ``pauses``)."""

    RATE_LIMITED = "rate_limited"  # a 429
    REFUSED = "refused"  # the token refused: a 401 or 403


@dataclass(frozen=True)
class Pause:
    """One row of ``pauses``: no task of ``provider`` is polled before ``paused_until``. A row
    whose end has passed is no pause; it is left to expire, never cleared."""

    provider: str
    paused_until: datetime
    reason: PauseReason
    refusals: int  # the token's refusals in a row when it was written, for information only
    updated_at: datetime
    # Read for people, not stored: the provider's unfinished tasks, none polled before the end.
    waiting: int | None = None

    def said(self, now: datetime) -> str:
        """Until when and why, for people: ``until 14:05:12 UTC for the API's back-off (a refused
        token, 3 refusals in a row)``; the date too when it is not ``now``'s."""
        until = self.paused_until.astimezone(UTC)
        shown = (
            f"{until:%H:%M:%S}"
            if until.date() == now.astimezone(UTC).date()
            else f"{until:%Y-%m-%d %H:%M:%S}"
        )
        api = "the API" if self.provider == DEFAULT_PROVIDER else f"the {self.provider} API"
        if self.reason is PauseReason.REFUSED:
            why = "a refused token" + (
                f", {self.refusals} refusals in a row" if self.refusals > 1 else ""
            )
        else:
            why = "a rate limit"
        return f"until {shown} UTC for {api}'s back-off ({why})"

    def then(self, later: Pause) -> Pause:
        """The pause in force once ``later`` (decided after this one) is added: the end that
        comes last, with its reason; the refusals and the time of ``later``."""
        if later.paused_until >= self.paused_until:
            return later
        return replace(self, refusals=later.refusals, updated_at=later.updated_at)
