"""``add``, ``remove``, ``poll-now``, ``reopen``, ``list``, ``history``: the tasks themselves.
Lists and histories are written as they are read, so their memory stays flat however long
they are."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from itertools import chain, islice
from typing import Any, TypeVar

from tracker.cli import render
from tracker.cli.common import PROG, pause_line, plural, say, tracker_for
from tracker.cli.id_files import id_lines
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.metadata import parse_metadata
from tracker.core.models import Snapshot, Task
from tracker.errors import InvalidTaskIDError, UsageError

# Tasks `list` shows on a terminal unless --limit says otherwise; elsewhere it shows them all.
TERMINAL_PAGE = 50
_TASK_COLUMNS = [
    "task_id",
    "status",
    "progress",
    "polls",
    "errors",
    "last_polled_at",
    "finish_reason",
    "label",
]
_SNAPSHOT_COLUMNS = [
    "polled_at",
    "http_status",
    "status",
    "progress",
    "latency_ms",
    "finished",
    "error",
]
_Row = TypeVar("_Row")


def add(args: argparse.Namespace) -> int:
    metadata = None if args.metadata is None else parse_metadata(args.metadata)
    with ExitStack() as stack:
        lines = stack.enter_context(id_lines(args.file)) if args.file is not None else None
        tracker = stack.enter_context(tracker_for(args))
        task_ids = chain(args.ids, lines or ())
        try:
            count = tracker.add_stream(
                task_ids, label=args.label, metadata=metadata, provider=args.provider
            )
        except InvalidTaskIDError as exc:
            if lines is None or not lines.number:
                raise
            # The file is read as the IDs are checked: the invalid one is on its last line read.
            raise InvalidTaskIDError(f"{exc} ({lines.where})") from None
    if not count.added + count.existing:
        raise UsageError("no task IDs given (as arguments or with --file)")
    message = f"added {plural(count.added, 'task')}"
    if count.existing:
        message += f"; {count.existing:,} already registered"
    say(message)
    return 0


def remove(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        result = tracker.remove(args.ids)
    message = f"removed {plural(len(result.removed), 'task')}"
    if result.already_finished:
        message += f"; {len(result.already_finished):,} had already finished"
    say(message)
    return 0


def poll_now(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        polled = tracker.poll_now(args.ids)
    say(f"{plural(len(polled), 'task')} due now; a running daemon polls them within a second")
    return 0


def reopen(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        reopened = tracker.reopen(args.ids)
    say(f"reopened {plural(len(reopened), 'task')}: watched again, due now")
    return 0


def listing(args: argparse.Namespace) -> int:
    on_terminal = sys.stdout.isatty()
    limit = args.limit if args.limit is not None or not on_terminal else TERMINAL_PAGE
    which: dict[str, Any] = {
        "status": args.status,
        "finished": True if args.finished else False if args.unfinished else None,
        "label": args.label,
        "provider": args.provider,
    }
    with tracker_for(args) as tracker:
        if on_terminal and not (args.json or args.jsonl):
            # A person at a terminal learns why nothing moves; a script reading the table does
            # not get a line it does not expect.
            now = datetime.now(UTC)
            for pause in tracker.pauses():
                say(pause_line(pause, now))
        shown = _Last(tracker.stream_tasks(**which, after=args.after, limit=limit))
        if args.json or args.jsonl:
            render.write_json(map(render.record_row, shown), sys.stdout, lines=args.jsonl)
        else:
            _write_task_table(shown)
        if on_terminal and shown.last is not None and shown.count == limit:
            more = tracker.count_tasks(**which, after=shown.last.task_id)
            if more:
                sys.stdout.flush()
                next_page = _next_page(args, shown.last.task_id)
                say(f"… {more:,} more; next page: {next_page}", sys.stderr)
    return 0


def _write_task_table(shown: Iterable[Task]) -> None:
    """The tasks as a table, with a provider column when the first page holds a task of
    another provider than ``default``."""
    remaining = iter(shown)
    first = list(islice(remaining, TERMINAL_PAGE))
    columns = _TASK_COLUMNS
    if any(task.provider != DEFAULT_PROVIDER for task in first):
        columns = [*_TASK_COLUMNS, "provider"]
    cells = (_task_cells(task)[: len(columns)] for task in chain(first, remaining))
    _write_table(columns, cells, "no tasks")


def _task_cells(t: Task) -> list[Any]:
    return [
        t.task_id,
        t.status,
        t.progress,
        t.poll_count,
        t.error_count,
        t.last_polled_at,
        t.finish_reason,
        t.label,
        t.provider,
    ]


def _next_page(args: argparse.Namespace, last_task_id: str) -> str:
    """The command that shows the next page: this one's filters, after the last task shown."""
    words = [PROG, "list"]
    filters = (("--status", args.status), ("--label", args.label), ("--provider", args.provider))
    for flag, value in filters:
        if value is not None:
            words += [flag, value]
    words += ["--finished"] * args.finished + ["--unfinished"] * args.unfinished
    if args.limit is not None:
        words += ["--limit", str(args.limit)]
    words += ["--json"] * args.json + ["--jsonl"] * args.jsonl
    return shlex.join([*words, "--after", last_task_id])


def history(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        snapshots = tracker.stream_history(args.task_id, first=args.limit, last=args.tail)
        if args.json or args.jsonl:
            render.write_json(map(render.record_row, snapshots), sys.stdout, lines=args.jsonl)
        else:
            _write_table(_SNAPSHOT_COLUMNS, map(_snapshot_cells, snapshots), "not polled yet")
    return 0


def _snapshot_cells(s: Snapshot) -> list[Any]:
    return [s.polled_at, s.http_status, s.status, s.progress, s.latency_ms, s.finished, s.error]


def _write_table(columns: list[str], rows: Iterable[list[Any]], empty: str) -> None:
    """The rows as a table (its widths from the first page), or ``empty`` if there are none;
    nothing is written before the first row is read."""
    remaining = iter(rows)
    first = next(remaining, None)
    if first is None:
        say(empty)
        return
    for line in render.table_lines(columns, chain([first], remaining), sample=TERMINAL_PAGE):
        sys.stdout.write(line + "\n")


class _Last(Iterator[_Row]):
    """Rows passed through, remembering how many and the last one."""

    def __init__(self, rows: Iterable[_Row]) -> None:
        self._rows = iter(rows)
        self.count = 0
        self.last: _Row | None = None

    def __next__(self) -> _Row:
        row = next(self._rows)
        self.count += 1
        self.last = row
        return row
