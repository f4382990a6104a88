"""``report``: what the tasks registered in a window came to, grouped (docs/insights.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from tracker.cli import render
from tracker.cli.common import say, tracker_for
from tracker.core.report import FIGURES, ReportRow
from tracker.core.texts import took
from tracker.errors import ReportQueryError, UsageError
from tracker.settings.values import report_query

ABOUT = "the tasks registered in a window, grouped: how they ended, how long they took"
# The table's headers where the JSON key is long; durations and rates read as people write them.
_HEADERS = {
    "unfinished": "unfin.",
    "not_found": "not found",
    "timed_out": "timed out",
    "failure_rate": "failed %",
    "p50_seconds": "p50",
    "p90_seconds": "p90",
    "p99_seconds": "p99",
    "queue_p50_seconds": "queue p50",
    "polls_per_task": "polls/task",
}


def report(args: argparse.Namespace) -> int:
    try:
        query = report_query(datetime.now(UTC), args.since, args.until, args.by)
    except ReportQueryError as exc:
        given = getattr(args, exc.field)
        raise UsageError(f"--{exc.field} {given!r}: {exc.reason}") from None
    with tracker_for(args) as tracker:
        rows = tracker.report(query.since, query.until, query.by)
    columns = [*(key.value for key in query.by), *FIGURES]
    if args.json:
        say(render.to_json([row.as_dict() for row in rows]))
    elif args.csv:
        values = [list(row.as_dict().values()) for row in rows]
        sys.stdout.write(render.to_csv(columns, values))
    else:
        end = "now" if query.until is None else _minute(query.until)
        say(f"Tasks registered from {_minute(query.since)} to {end} (UTC)")
        if rows:
            say(render.table([_HEADERS.get(c, c) for c in columns], _cells(rows), max_width=40))
        else:
            say("None.")
    return 0


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _cells(rows: Sequence[ReportRow]) -> list[list[object]]:
    return [
        [
            *row.keys.values(),
            *(f"{count:,}" for count in row.counts().values()),
            _percent(row.failure_rate),
            *(took(value) for value in (row.p50_seconds, row.p90_seconds, row.p99_seconds)),
            took(row.queue_p50_seconds),
            f"{row.polls_per_task:.1f}",
        ]
        for row in rows
    ]


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}"
