"""``poll``, ``run``, ``download``: the commands that talk to the video API."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import UTC, datetime

from tracker.cli import render
from tracker.cli.common import fail, pause_line, plural, say, settings_of, tracker_for
from tracker.core.eventloop import collect_garbage_for_a_long_run
from tracker.core.ids import check_task_id
from tracker.errors import TrackerError


def poll(args: argparse.Namespace) -> int:
    settings_of(args).require_tokens()  # before the database is opened: nothing written
    with tracker_for(args) as tracker:
        summary = tracker.poll_once(all_unfinished=args.all)
        pauses = tracker.pauses()
    say(
        f"polled {plural(summary.polled, 'task')}: "
        f"{summary.finished} finished, {summary.errors} failed polls"
    )
    # What the tasks not polled wait for: a pause this pass met, or one stored before it.
    now = datetime.now(UTC)
    for pause in pauses:
        say(pause_line(pause, now))
    if summary.unwritten:
        fail(TrackerError(f"{summary.unwritten} poll results could not be written"))
        return 1
    if summary.refused:
        fail(TrackerError("the API refused the token (HTTP 401/403); tasks were left as they were"))
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    settings_of(args).require_tokens()
    with tracker_for(args) as tracker:
        collect_garbage_for_a_long_run()
        tracker.run(until_done=args.until_done)
    return 0


def download(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    settings.require_tokens()
    with tracker_for(args) as tracker:
        rows = tracker.download(check_task_id(args.task_id), settings.download_variants)
    if args.json:
        say(render.to_json([asdict(row) for row in rows]))
    else:
        columns = ["variant", "state", "path", "size_bytes", "sha256", "last_error"]
        say(
            render.table(
                columns, [[getattr(row, c) for c in columns] for row in rows], max_width=100
            )
        )
    return 0 if all(row.state == "done" for row in rows) else 1
