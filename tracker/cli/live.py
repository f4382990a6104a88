"""The live view of ``tracker watch`` and ``tracker demo``, and the summary of ``tracker stats``:
what the daemons are doing, read from the database only, so they work beside daemons running
anywhere."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tracker.cli.common import pause_line
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import FinishReason, Stats, Task
from tracker.core.texts import age, shorten_middle
from tracker.errors import TrackerError, UsageError

BAR_WIDTH = 12
NARROW_BAR_WIDTH = 8
SHORTEST_ID = 12
# IDs this wide (or whole) tell the tasks apart by their ends: before a column gives way for
# them, they get at least this much.
ROOMY_ID = 16
_GAP = 2  # between two columns
# Each column beside the ID, as wide as its widest value (the bar apart): the optional ones
# give way, in this order, when the terminal is too narrow for the IDs.
_WIDTHS = {
    "": 4,
    "status": 11,
    "age": 6,
    "last poll": 10,
    "polls": 5,
    "errors": 6,
    "finished": len("not_found"),
}
_GIVE_WAY = ("age", "last poll")


def summary_lines(stats: Stats, rate: float | None = None) -> list[str]:
    """The summary of ``tracker stats``, line by line; ``rate`` in polls a second when known."""
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
    providers = stats.unfinished_by_provider
    if set(providers) - {DEFAULT_PROVIDER}:
        each = ", ".join(f"{providers[name]:,} {name}" for name in sorted(providers))
        lines.append(f"unfinished by provider: {each}")
    lines += [f"paused: {pause_line(pause, stats.at)}" for pause in stats.paused]
    for kind, counts in (("downloads", stats.downloads), ("notifications", stats.notifications)):
        if counts:
            lines.append(
                f"{kind}: " + ", ".join(f"{n:,} {state}" for state, n in sorted(counts.items()))
            )
    return lines


def view(
    stats: Stats,
    tasks: list[Task],
    rate: float | None,
    now: datetime,
    limit: int = 40,
    width: int = 80,
) -> RenderableType:
    """One frame: the summary, then the tasks with their progress (and how each finished,
    when some did)."""
    shown = tasks[:limit]
    finishing = any(task.finished for task in shown)
    longest = max((len(task.task_id) for task in shown), default=0)
    bar_width, columns, id_width = _layout(width, finishing, longest)
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("task", no_wrap=True)
    table.add_column("progress", no_wrap=True, width=bar_width)
    for column in columns:
        right = column in ("polls", "errors")
        table.add_column(
            column, no_wrap=True, min_width=_WIDTHS[column], justify="right" if right else "left"
        )
    for task in shown:
        cells: dict[str, RenderableType] = {
            "": f"{task.progress}%" if task.progress is not None else "",
            "status": task.status or "…",
            "age": age(now - task.registered_at),
            "last poll": (
                f"{age(now - task.last_polled_at)} ago" if task.last_polled_at else "never"
            ),
            "polls": str(task.poll_count),
            "errors": Text(str(task.error_count), style="red") if task.error_count else "0",
            "finished": task.finish_reason or "",
        }
        table.add_row(
            shorten_middle(task.task_id, id_width),
            _bar(task, bar_width),
            *(cells[column] for column in columns),
        )
    parts: list[RenderableType] = [Text("\n".join(summary_lines(stats, rate))), Text(""), table]
    unshown = stats.unfinished - sum(not task.finished for task in shown)
    if unshown > 0:
        parts.append(Text(f"… and {unshown:,} more unfinished tasks", style="dim"))
    if not shown:
        parts.append(Text("no unfinished task", style="dim"))
    return Group(*parts)


def _layout(width: int, finishing: bool, longest_id: int) -> tuple[int, list[str], int]:
    """The bar's width, the columns after it and the IDs' width for a terminal ``width`` wide:
    the bar narrows, then the age column goes, then the last poll's, until the IDs have
    ROOMY_ID characters (or all they need); they are cut in the middle to what is left."""
    wanted = [name for name in _WIDTHS if finishing or name != "finished"]
    layouts = [(BAR_WIDTH, wanted), (NARROW_BAR_WIDTH, wanted)]
    for name in _GIVE_WAY:
        wanted = [column for column in wanted if column != name]
        layouts.append((NARROW_BAR_WIDTH, wanted))
    for bar_width, columns in layouts:
        beside = bar_width + sum(_WIDTHS[name] + _GAP for name in columns) + _GAP
        room = width - beside
        if room >= min(longest_id, ROOMY_ID):
            break
    return bar_width, columns, max(SHORTEST_ID, room)


def _bar(task: Task, width: int) -> RenderableType:
    """A failed task's bar stops in red where its progress stopped; what it never did is a
    dashed line, unlike the grey of work still to come."""
    if task.progress is None:
        return Text("·" * width, style="dim")
    if task.finish_reason == FinishReason.FAILED:
        done = round(width * task.progress / 100)
        return Text.assemble(("━" * done, "red"), ("╌" * (width - done), "dim red"))
    return ProgressBar(total=100, completed=task.progress, width=width)


class LiveView:
    """Redraws the view in place from ``read()``; log lines written meanwhile are printed above
    it instead of through it. A database that cannot be read for a while is said so on screen
    and read again at the next refresh."""

    def __init__(
        self,
        read: Callable[[], tuple[Stats, list[Task]]],
        limit: int,
        console: Console | None = None,
    ) -> None:
        self._read = read
        self._limit = limit
        self._console = console
        self._previous: tuple[float, int] | None = None

    @contextmanager
    def showing(self) -> Iterator[Live]:
        with Live(auto_refresh=False, console=self._console) as live, _logs_above(live):
            yield live

    def refresh(self, live: Live, retry: float) -> None:
        try:
            stats, tasks = self._read()
        except UsageError:
            raise  # no database there: waiting will not bring one
        except TrackerError as exc:
            trying = f"{exc}; trying again every {retry:g}s"
            live.update(Text(trying, style="red"), refresh=True)
            return
        moment = time.monotonic()
        rate = None
        if self._previous is not None and moment > self._previous[0]:
            rate = (stats.polls_total - self._previous[1]) / (moment - self._previous[0])
        self._previous = (moment, stats.polls_total)
        width = live.console.width
        live.update(view(stats, tasks, rate, stats.at, self._limit, width), refresh=True)

    def run_forever(self, every: float) -> None:
        """``tracker watch``: until interrupted."""
        with self.showing() as live:
            while True:
                self.refresh(live, every)
                time.sleep(every)


@contextmanager
def _logs_above(live: Live) -> Iterator[None]:
    """While a terminal shows the view, rich stands in for stderr and prints what is written
    to it above the view; the log handlers, which hold on to the real stderr, are pointed at
    rich's stand-in for as long."""
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.__stderr__
    ]
    if not live.console.is_terminal or not handlers:
        yield
        return
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(sys.__stderr__)
