"""The report of ``tracker report``, ``GET /v1/report`` and the Insights page (docs/insights.md):
what it is asked (a window of registrations, the keys to group by), what each row holds, and the
percentile rule."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tracker.errors import ReportQueryError

#: The window when none is given: the tasks registered in the last seven days.
DEFAULT_WINDOW = timedelta(days=7)
#: The percentiles of the durations, in percent.
PERCENTILES = (50, 90, 99)


class GroupKey(enum.StrEnum):
    """What the report's rows may be grouped by: columns of ``tasks``, or the UTC day or hour
    the task was registered in."""

    MODEL = "model"
    SIZE = "size"
    SECONDS = "seconds"
    PROVIDER = "provider"
    LABEL = "label"
    DAY = "day"
    HOUR = "hour"


KEY_NAMES = ", ".join(key.value for key in GroupKey)


def group_keys(raw: str | None) -> tuple[GroupKey, ...]:
    """``model,size`` (spaces around a key are let be) as keys, in the order given, each once;
    none for None or blank. ReportQueryError naming ``by`` for anything else (KEYS_PATTERN
    says the same to the API's clients)."""
    if raw is None or not raw.strip(" "):
        return ()
    keys: dict[GroupKey, None] = {}
    for word in raw.split(","):
        name = word.strip(" ")
        try:
            keys[GroupKey(name)] = None
        except ValueError:
            said = f"unknown key {name!r}" if name else "a key is missing between two commas"
            raise ReportQueryError("by", f"{said}: the keys are {KEY_NAMES}") from None
    return tuple(keys)


_KEY = "(?:" + "|".join(key.value for key in GroupKey) + ")"
#: What ``group_keys`` takes, as a regular expression (JSON Schema's dialect too).
KEYS_PATTERN = f"^ *(?:{_KEY} *(?:, *{_KEY} *)*)?$"


@dataclass(frozen=True)
class ReportQuery:
    """The tasks registered from ``since`` (included) until ``until`` (excluded; None: no end),
    grouped by ``by`` (no keys: one row of them all)."""

    since: datetime
    until: datetime | None = None
    by: tuple[GroupKey, ...] = ()

    @classmethod
    def of(
        cls,
        now: datetime,
        since: datetime | None = None,
        until: datetime | None = None,
        by: str | Sequence[str] | None = None,
    ) -> ReportQuery:
        """The query for these values, ``since`` a week before ``now`` unless given;
        ReportQueryError naming the field for an ``until`` not after ``since`` or an unknown
        key."""
        start = since if since is not None else now - DEFAULT_WINDOW
        if until is not None and until <= start:
            said = "the default start, 7 days ago" if since is None else "since"
            raise ReportQueryError(
                "until",
                f"{_moment(until)} is not after the start of the window ({said}: {_moment(start)})",
            )
        keys = group_keys(by if by is None or isinstance(by, str) else ",".join(by))
        return cls(start, until, keys)


def _moment(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ReportRow:
    """One group: its keys (``None`` for a task without the value, e.g. no model known yet),
    the tasks in each state, and what took how long. Durations are in seconds; percentiles are
    nearest-rank (``nearest_rank``) of the completed tasks' durations."""

    keys: dict[str, str | None]
    tasks: int
    unfinished: int
    completed: int
    failed: int
    not_found: int
    timed_out: int
    removed: int
    failure_rate: float | None  # failed / (completed + failed)
    p50_seconds: float | None
    p90_seconds: float | None
    p99_seconds: float | None
    queue_p50_seconds: float | None
    polls_per_task: float

    def as_dict(self) -> dict[str, object]:
        """The keys first, then the figures: a row of the JSON array, the CSV, the API."""
        figures = {name: getattr(self, name) for name in FIGURES}
        return {**self.keys, **figures}


FIGURES = (
    "tasks",
    "unfinished",
    "completed",
    "failed",
    "not_found",
    "timed_out",
    "removed",
    "failure_rate",
    "p50_seconds",
    "p90_seconds",
    "p99_seconds",
    "queue_p50_seconds",
    "polls_per_task",
)


def nearest_rank(count: int, percent: int) -> int:
    """The 1-based rank of the ``percent`` percentile among ``count`` sorted values, the
    smallest with at least ``percent`` % of them at or below it: ceil(count * percent / 100)."""
    return max(1, -(-count * percent // 100))


def failure_rate(completed: int, failed: int) -> float | None:
    decided = completed + failed
    return None if decided == 0 else round(failed / decided, 4)


def in_seconds(milliseconds: int | None) -> float | None:
    """A duration as the report gives it: seconds, to the millisecond."""
    return None if milliseconds is None else milliseconds / 1000
