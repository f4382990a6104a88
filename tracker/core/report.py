"""The report of ``tracker report``, ``GET /v1/report`` and the Insights page (docs/insights.md):
what it is asked (a window of registrations, the keys to group by), what each row holds, and the
percentile rule."""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

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
            said = (
                f"the default start, {DEFAULT_WINDOW.days} days ago" if since is None else "since"
            )
            raise ReportQueryError(
                "until",
                f"{_moment(until)} is not after the start of the window ({said}: {_moment(start)})",
            )
        keys = group_keys(by if by is None or isinstance(by, str) else ",".join(by))
        return cls(start, until, keys)


def _moment(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Tally:
    """A group's keys (``None`` for a task without the value, e.g. no model known yet) and its
    tasks in each state: what a group as read and its report row have alike."""

    keys: dict[str, str | None]
    tasks: int
    unfinished: int
    completed: int
    failed: int
    not_found: int
    timed_out: int
    removed: int

    def counts(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COUNTS}


#: The counts of a tally, which groups of finer keys add up.
COUNTS = tuple(field.name for field in fields(Tally) if field.name != "keys")


@dataclass(frozen=True)
class ReportRow(Tally):
    """One group: its tally and what took how long. Durations are in seconds; percentiles are
    nearest-rank (``nearest_rank``) of the completed tasks' durations."""

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


#: A report row's figures, in their order: its columns after the keys.
FIGURES = tuple(field.name for field in fields(ReportRow) if field.name != "keys")


@dataclass(frozen=True)
class Group(Tally):
    """One group's tasks as read, before they are figures: its tally, the tasks' polls and
    their durations in milliseconds (each completed task's, each running one's wait), in no
    order until ``row`` or ``histogram`` sorts them. Groups of finer keys add up to coarser
    ones (``rollup``): counts sum, durations join."""

    polls: int
    took: list[int]
    queued: list[int]

    def row(self) -> ReportRow:
        self.took.sort()
        self.queued.sort()
        p50, p90, p99 = (_nearest(self.took, percent) for percent in PERCENTILES)
        return ReportRow(
            keys=self.keys,
            **self.counts(),
            failure_rate=failure_rate(self.completed, self.failed),
            p50_seconds=in_seconds(p50),
            p90_seconds=in_seconds(p90),
            p99_seconds=in_seconds(p99),
            queue_p50_seconds=in_seconds(_nearest(self.queued, 50)),
            polls_per_task=round(self.polls / self.tasks, 2),
        )

    def histogram(self, edges_ms: Sequence[int]) -> tuple[int, ...]:
        """How many durations are under the first edge, between each two, and at or past the
        last."""
        self.took.sort()
        cuts = [0, *(bisect_left(self.took, edge) for edge in edges_ms), len(self.took)]
        return tuple(later - earlier for earlier, later in pairwise(cuts))

    @classmethod
    def total(cls, keys: dict[str, str | None], groups: Sequence[Group]) -> Group:
        """``groups`` added up, as one group of ``keys``: counts sum, durations join."""
        return cls(
            keys=keys,
            **{name: sum(getattr(group, name) for group in groups) for name in COUNTS},
            polls=sum(group.polls for group in groups),
            took=[ms for group in groups for ms in group.took],
            queued=[ms for group in groups for ms in group.queued],
        )


def rollup(groups: Iterable[Group], keys: Sequence[str]) -> list[Group]:
    """``groups`` added up by ``keys`` (some of theirs), in the report's order."""
    merged: dict[tuple[str | None, ...], list[Group]] = {}
    for group in groups:
        merged.setdefault(tuple(group.keys[key] for key in keys), []).append(group)
    totals = [
        Group.total(dict(zip(keys, values, strict=True)), parts) for values, parts in merged.items()
    ]
    return sorted(totals, key=lambda group: order(group.keys))


def order(keys: dict[str, str | None]) -> list[tuple[bool, float, str]]:
    """The report's order of groups: by their keys, a missing value last, numbers (``seconds``)
    by their value, the rest as text."""
    return [_in_order(value) for value in keys.values()]


def _in_order(value: str | None) -> tuple[bool, float, str]:
    if value is None:
        return (True, 0.0, "")
    try:
        return (False, float(value), value)
    except ValueError:
        return (False, float("inf"), value)


def _nearest(ordered: Sequence[int], percent: int) -> int | None:
    return ordered[nearest_rank(len(ordered), percent) - 1] if ordered else None


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


@dataclass(frozen=True)
class HourFinishes:
    """The tasks of a window that completed and failed in one UTC hour."""

    hour: datetime
    completed: int
    failed: int


@dataclass(frozen=True)
class FailureReason:
    """Why failed tasks failed, as the API said it in their last answer, and how many."""

    code: str | None
    message: str | None
    tasks: int
