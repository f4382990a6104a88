"""What every command handler shares: its settings, its Tracker, and how it prints."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from typing import TextIO

from tracker.cli import logs
from tracker.core.pauses import Pause
from tracker.python_api import Tracker
from tracker.settings import Settings

PROG = "tracker"


def settings_of(args: argparse.Namespace) -> Settings:
    settings: Settings = args.settings
    return settings


def tracker_for(args: argparse.Namespace) -> Tracker:
    """The command's Tracker: one that only reads for a command declared as reading (it creates
    no database and migrates none, and reads one it may not write)."""
    return Tracker.from_settings(settings_of(args), read_only=args.reads_only)


def say(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"


def pause_line(pause: Pause, now: datetime) -> str:
    """``3 tasks wait until 14:05:12 UTC for the API's back-off (a refused token); …``: what a
    pause in force holds back, until when and why (poll, list, stats, watch)."""
    waiting = pause.waiting or 0
    return (
        f"{plural(waiting, 'task')} {'waits' if waiting == 1 else 'wait'} {pause.said(now)}; "
        "`tracker poll --all` asks now"
    )


def fail(exc: Exception) -> None:
    """The one line a failed command ends with: on stderr, or in the log pipeline."""
    if logs.writing_json():
        logging.getLogger(PROG).error("%s", exc)
    else:
        for line in str(exc).splitlines() or [""]:  # a line for each task refused, say
            print(f"{PROG}: error: {line}", file=sys.stderr)
