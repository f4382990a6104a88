"""`tracker watch` and `tracker stats`: what the daemons are doing, read from the database.

Both read only the database, so they work beside daemons running anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tracker.core.models import FinishReason, Stats, Task
from tracker.errors import TrackerError


def age(delta: timedelta) -> str:
    """2d3h, 4h05m, 12m30s, 45s: short enough for a column."""
    seconds = max(0, int(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


BAR_WIDTH = 12


def summary_lines(stats: Stats, rate: float | None = None) -> list[str]:
    """The summary of `stats`, line by line; ``rate`` in polls a second when known."""
    finished = ", ".join(f"{stats.finished.get(reason, 0):,} {reason}" for reason in FinishReason)
    lines = [
        f"tasks: {stats.unfinished:,} unfinished; {finished}",
        f"due now and waiting for a daemon: {stats.due:,}; being polled: {stats.held:,}",
        f"snapshots in the last minute: {stats.snapshots_last_minute:,} "
        f"({stats.errors_last_minute:,} with an error)"
        + (f"; polling {rate:,.1f}/s" if rate is not None else ""),
    ]
    if stats.oldest_unfinished is not None:
        lines.append(f"oldest unfinished task: {age(stats.at - stats.oldest_unfinished)} old")
    for kind, counts in (("downloads", stats.downloads), ("notifications", stats.notifications)):
        if counts:
            lines.append(
                f"{kind}: " + ", ".join(f"{n:,} {state}" for state, n in sorted(counts.items()))
            )
    return lines


def view(
    stats: Stats, tasks: list[Task], rate: float | None, now: datetime, limit: int = 40
) -> RenderableType:
    """One frame of `tracker watch`."""
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    # On a narrow terminal only the IDs give way (cut with an ellipsis): the other columns
    # keep the width their values need.
    table.add_column("task", overflow="ellipsis", min_width=12)
    table.add_column("progress", no_wrap=True, width=BAR_WIDTH)
    for column, width in (("", 4), ("status", 11), ("age", 5), ("last poll", 9)):
        table.add_column(column, no_wrap=True, min_width=width)
    for column in ("polls", "errors"):
        table.add_column(column, no_wrap=True, min_width=len(column), justify="right")
    shown = tasks[:limit]
    for task in shown:
        bar: RenderableType = (
            ProgressBar(total=100, completed=task.progress, width=BAR_WIDTH)
            if task.progress is not None
            else Text("·" * BAR_WIDTH, style="dim")
        )
        table.add_row(
            task.task_id,
            bar,
            f"{task.progress}%" if task.progress is not None else "",
            task.status or "…",
            age(now - task.registered_at),
            f"{age(now - task.last_polled_at)} ago" if task.last_polled_at else "never",
            str(task.poll_count),
            Text(str(task.error_count), style="red") if task.error_count else "0",
        )
    parts: list[RenderableType] = [Text("\n".join(summary_lines(stats, rate))), Text(""), table]
    if stats.unfinished > len(shown):
        more = stats.unfinished - len(shown)
        parts.append(Text(f"… and {more:,} more unfinished tasks", style="dim"))
    if not shown:
        parts.append(Text("no unfinished task", style="dim"))
    return Group(*parts)


class Watcher:
    """Refreshes the view in place until interrupted."""

    def __init__(
        self,
        read: Callable[[], tuple[Stats, list[Task]]],
        refresh: float,
        limit: int,
        console: Console | None = None,
    ) -> None:
        self._read = read
        self._refresh = refresh
        self._limit = limit
        self._console = console

    def run(self) -> None:
        """Until interrupted; a database that cannot be read for a while is said so on
        screen and read again at the next refresh."""
        read = self._read
        previous: tuple[float, int] | None = None
        with Live(auto_refresh=False, screen=False, console=self._console) as live:
            while True:
                try:
                    stats, tasks = read()
                except TrackerError as exc:
                    trying = f"{exc}; trying again every {self._refresh:g}s"
                    live.update(Text(trying, style="red"), refresh=True)
                    time.sleep(self._refresh)
                    continue
                moment = time.monotonic()
                rate = None
                if previous is not None and moment > previous[0]:
                    rate = (stats.polls_total - previous[1]) / (moment - previous[0])
                previous = (moment, stats.polls_total)
                live.update(view(stats, tasks, rate, stats.at, self._limit), refresh=True)
                time.sleep(self._refresh)
