"""The Insights page (``/insights``, docs/dashboard.md): what the history of a window says, drawn
from the report (``Database.reports``) and the reads beside it (``Database.insights``) by
``charts``. The window and the keys come from a form, read forgivingly as the overview's filters
are: what is not a choice is the default."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tracker.core.report import COUNTS, FIGURES, GroupKey, ReportRow, rollup
from tracker.core.texts import took
from tracker.settings.values import report_query
from tracker.web.charts import (
    bin_names,
    day_lines,
    histograms,
    hour_bars,
)
from tracker.web.login import Seen
from tracker.web.pages import reading
from tracker.web.service import service_of
from tracker.web.templating import render

router = APIRouter(include_in_schema=False)
#: The windows the page offers, by the age its form sends.
WINDOWS = {"24h": "the last 24 hours", "7d": "the last 7 days", "30d": "the last 30 days"}
DEFAULT_WINDOW = "7d"
DEFAULT_KEYS = (GroupKey.MODEL,)
_READ_ANYWAY = (GroupKey.DAY, GroupKey.MODEL)
REASONS = 10


@dataclass(frozen=True)
class Choice:
    """What the page shows: a window (an age the form offers) and the report's keys."""

    window: str
    keys: tuple[GroupKey, ...]

    @classmethod
    def of(cls, since: str, by: list[str] | None) -> Choice:
        """``by`` absent is the default keys; the form always sends an empty ``by`` beside the
        boxes ticked, so ticking none means no key."""
        window = since if since in WINDOWS else DEFAULT_WINDOW
        if by is None:
            return cls(window, DEFAULT_KEYS)
        known = {key.value: key for key in GroupKey}
        return cls(window, tuple(dict.fromkeys(known[k] for k in by if k in known)))

    def query_string(self) -> str:
        """The same report's parameters for ``GET /v1/report``."""
        keys = {"by": ",".join(self.keys)} if self.keys else {}
        return urlencode({"since": self.window, **keys})

    @property
    def command(self) -> str:
        keys = f" --by {','.join(self.keys)}" if self.keys else ""
        return f"tracker report --since {self.window}{keys}"


@router.get("/insights")
def insights(
    request: Request,
    seen: Seen,
    since: str = DEFAULT_WINDOW,
    by: Annotated[list[str] | None, Query()] = None,
) -> Response:
    service = service_of(request)
    database = service.database
    now = service.clock.now()
    choice = Choice.of(since, by)
    query = report_query(now, choice.window)
    # One read grouped finely, added up into each view: by day, by model, by the keys chosen.
    finest = (GroupKey.DAY, GroupKey.MODEL, *(k for k in choice.keys if k not in _READ_ANYWAY))
    with reading():
        groups = database.reports.groups(replace(query, by=finest))
        hours = database.insights.finishes_by_hour(query)
        reasons = database.insights.failure_reasons(query, REASONS)
    by_day = [group.row() for group in rollup(groups, [GroupKey.DAY.value])]
    table = [group.row() for group in rollup(groups, [key.value for key in choice.keys])]
    context: dict[str, Any] = {
        "viewer": seen,
        "now": now,
        "choice": choice,
        "windows": WINDOWS,
        "keys": list(GroupKey),
        "since": query.since,
        "totals": _totals(by_day),
        "bars": hour_bars(hours, query.since, now),
        "histograms": histograms(rollup(groups, [GroupKey.MODEL.value])),
        "bin_names": bin_names(),
        "lines": day_lines(by_day),
        "reasons": reasons,
        "columns": [key.value for key in choice.keys],
        "figures": {figure: HEADINGS[figure] for figure in FIGURES},  # in the report's order
        "rows": [_cells(row) for row in table],
        "json_url": f"/v1/report?{choice.query_string()}",
    }
    return render(request, "insights.html", context)


@dataclass(frozen=True)
class Totals:
    tasks: int
    unfinished: int
    completed: int
    failed: int
    ended: int  # not found, timed out or removed

    @property
    def failure_rate(self) -> str:
        decided = self.completed + self.failed
        return "—" if decided == 0 else f"{self.failed / decided:.1%}"


def _totals(rows: list[ReportRow]) -> Totals:
    """The window's counts, summed over its days (counts add up; percentiles do not)."""
    return Totals(
        tasks=sum(row.tasks for row in rows),
        unfinished=sum(row.unfinished for row in rows),
        completed=sum(row.completed for row in rows),
        failed=sum(row.failed for row in rows),
        ended=sum(row.not_found + row.timed_out + row.removed for row in rows),
    )


#: The report's columns as the page heads them.
HEADINGS = {
    "tasks": "Tasks",
    "unfinished": "Unfinished",
    "completed": "Completed",
    "failed": "Failed",
    "not_found": "Not found",
    "timed_out": "Timed out",
    "removed": "Removed",
    "failure_rate": "Failure rate",
    "p50_seconds": "p50",
    "p90_seconds": "p90",
    "p99_seconds": "p99",
    "queue_p50_seconds": "Queue p50",
    "polls_per_task": "Polls/task",
}


def _cells(row: ReportRow) -> dict[str, str]:
    """A report row as the table's text, keyed as the JSON is."""
    cells = {key: value if value is not None else "—" for key, value in row.keys.items()}
    for name in COUNTS:
        cells[name] = f"{getattr(row, name):,}"
    rate = row.failure_rate
    cells["failure_rate"] = "—" if rate is None else f"{rate:.1%}"
    for name in ("p50_seconds", "p90_seconds", "p99_seconds", "queue_p50_seconds"):
        cells[name] = took(getattr(row, name))
    cells["polls_per_task"] = f"{row.polls_per_task:.1f}"
    return cells
