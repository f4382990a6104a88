"""``add``, ``remove``, ``list``, ``history``: the tasks themselves."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from tracker.cli import render
from tracker.cli.common import pause_line, plural, say, tracker_for
from tracker.core.ids import check_task_id
from tracker.errors import UsageError


def add(args: argparse.Namespace) -> int:
    task_ids = list(args.ids)
    if args.file is not None:
        task_ids += _read_id_file(args.file)
    if not task_ids:
        raise UsageError("no task IDs given (as arguments or with --file)")
    with tracker_for(args) as tracker:
        result = tracker.add(task_ids, label=args.label)
    message = f"added {plural(len(result.added), 'task')}"
    if result.existing:
        message += f"; {len(result.existing):,} already registered"
    say(message)
    return 0


def _read_id_file(path: str) -> list[str]:
    source = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise UsageError(f"--file {path!r}: cannot read: {reason}") from None
    task_ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            task_ids.append(check_task_id(stripped))
        except UsageError as exc:
            raise UsageError(f"{exc} (line {number} of {source})") from None
    return task_ids


def remove(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        result = tracker.remove(args.ids)
    message = f"removed {plural(len(result.removed), 'task')}"
    if result.already_finished:
        message += f"; {len(result.already_finished):,} had already finished"
    say(message)
    return 0


def listing(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        tasks = tracker.tasks(status=args.status, unfinished=args.unfinished)
        # A person at a terminal learns why nothing moves; a script reading the table does not
        # get a line it does not expect.
        pauses = tracker.pauses() if sys.stdout.isatty() and not args.json else []
    if args.json:
        say(render.to_json([asdict(task) for task in tasks]))
        return 0
    now = datetime.now(UTC)
    for pause in pauses:
        say(pause_line(pause, now))
    columns = [
        "task_id",
        "status",
        "progress",
        "polls",
        "errors",
        "last_polled_at",
        "finish_reason",
        "label",
    ]
    rows = [
        [
            t.task_id,
            t.status,
            t.progress,
            t.poll_count,
            t.error_count,
            t.last_polled_at,
            t.finish_reason,
            t.label,
        ]
        for t in tasks
    ]
    say(render.table(columns, rows) if tasks else "no tasks")
    return 0


def history(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        snapshots = tracker.history(check_task_id(args.task_id))
    if args.json:
        say(render.to_json([asdict(snapshot) for snapshot in snapshots]))
        return 0
    columns = ["polled_at", "http_status", "status", "progress", "latency_ms", "finished", "error"]
    rows = [
        [s.polled_at, s.http_status, s.status, s.progress, s.latency_ms, s.finished, s.error]
        for s in snapshots
    ]
    say(render.table(columns, rows) if snapshots else "not polled yet")
    return 0
