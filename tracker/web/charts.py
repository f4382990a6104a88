"""What the Insights page draws (docs/dashboard.md), worked out here and drawn by its template as
inline SVG, as the task page's chart is: the finishes of each hour as stacked bars, each model's
durations as a histogram, the p50 and p90 of each day as two lines. Coordinates are in viewBox
units (1000 wide, 100 high; y grows downwards); every mark has its numbers in words."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tracker.core.report import Group, HourFinishes, ReportRow
from tracker.core.texts import age, took

WIDTH = 1000
HEIGHT = 100
HOUR = timedelta(hours=1)
#: The histogram's edges, in seconds: under 30 s, 30 s to 1 min, … 30 min to 1 h, 1 h and more.
DURATION_EDGES = (30, 60, 120, 180, 300, 600, 900, 1800, 3600)


# Tops whose halves read well: 15, 20, 25, 30, 40, 50… and for durations whole minutes or hours.
_STEPS = (1, 2, 3, 4, 5, 6, 8, 10)
_DURATION_TOPS = (10, 20, 30, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2400)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 3, 4, 5, 6 or 8 times a power of ten at or above ``value`` (1 for
    nothing): the top of a count's axis."""
    if value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in _STEPS if step * power >= value)


def nice_duration(seconds: float) -> float:
    """The top of a duration's axis: whole minutes below 40, then whole hours."""
    for top in _DURATION_TOPS:
        if top >= seconds:
            return float(top)
    return 3600 * nice_ceiling(max(seconds / 3600, 1))


def _span(seconds: float) -> str:
    """An axis's or a range's duration: ``30s``, ``4m00s``, ``1h00m``."""
    return age(timedelta(seconds=seconds))


@dataclass
class HourBars:
    """Completed and failed tasks of each hour, stacked: one path per kind."""

    start: datetime
    end: datetime  # the last hour drawn, included
    completed: str = ""
    failed: str = ""
    top: float = 1.0  # the value at the top of the plot
    hours: list[HourFinishes] = field(default_factory=list)  # those with any, for the table
    label: str = ""

    @property
    def middle(self) -> datetime:
        return self.start + (self.end - self.start) / 2


def hour_bars(finishes: Sequence[HourFinishes], since: datetime, until: datetime) -> HourBars:
    """Bars from the hour of ``since`` to the hour of ``until`` (or of the last finish, if
    later), one a column; an hour without finishes has none."""
    first = since.replace(minute=0, second=0, microsecond=0)
    last = until.replace(minute=0, second=0, microsecond=0)
    if finishes:
        last = max(last, finishes[-1].hour)
    columns = round((last - first) / HOUR) + 1
    width = WIDTH / columns
    top = nice_ceiling(max((f.completed + f.failed for f in finishes), default=0))
    bars = HourBars(first, last, top=top, hours=list(finishes))
    completed: list[str] = []
    failed: list[str] = []
    for finish in finishes:
        x = round((finish.hour - first) / HOUR * width, 2)
        done = HEIGHT * finish.completed / top
        both = HEIGHT * (finish.completed + finish.failed) / top
        if finish.completed:
            completed.append(_column(x, width, HEIGHT - done, done))
        if finish.failed:
            failed.append(_column(x, width, HEIGHT - both, both - done))
    bars.completed, bars.failed = "".join(completed), "".join(failed)
    total_done = sum(f.completed for f in finishes)
    total_failed = sum(f.failed for f in finishes)
    busiest = max(finishes, key=lambda f: f.completed + f.failed, default=None)
    peak = (
        f"; the busiest hour, {busiest.hour:%Y-%m-%d %H:00} UTC, "
        f"{busiest.completed + busiest.failed:,}"
        if busiest
        else ""
    )
    bars.label = f"{total_done:,} completed and {total_failed:,} failed over {columns} hours{peak}."
    return bars


def _column(x: float, width: float, y: float, height: float) -> str:
    """One bar as a path's rectangle, a hair narrower than its column so that bars stay apart
    where there is room."""
    gap = width * 0.15 if width > 3 else 0.0
    return f"M{x + gap / 2:.2f},{y:.2f}h{width - gap:.2f}v{height:.2f}h{gap - width:.2f}z"


@dataclass(frozen=True)
class Bin:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Histogram:
    """One model's durations: a bar per range, as a share of its completed tasks."""

    model: str | None
    completed: int
    bins: list[Bin]
    p50: str
    p90: str
    label: str


def bin_names() -> list[str]:
    """``<30s``, ``30s``, ``1m`` … ``1h+``: where each range starts, for the axis."""
    starts = [_span(edge).replace("m00s", "m").replace("h00m", "h") for edge in DURATION_EDGES]
    return ["<" + starts[0], *starts[:-1], starts[-1] + "+"]


def histograms(models: Sequence[Group]) -> list[Histogram]:
    """A histogram per model (groups of the report by model) that completed any, with its p50
    and p90."""
    names = bin_names()
    width = WIDTH / len(names)
    edges_ms = [edge * 1000 for edge in DURATION_EDGES]
    drawn = []
    for group in models:
        counts = group.histogram(edges_ms)
        total = sum(counts)
        if not total:
            continue
        row = group.row()
        tallest = max(counts) or 1
        bins = []
        for index, count in enumerate(counts):
            height = HEIGHT * count / tallest
            share = f"{count / total:.0%}" if total else "0%"
            bins.append(
                Bin(
                    round(index * width + width * 0.1, 2),
                    round(HEIGHT - height, 2),
                    round(width * 0.8, 2),
                    round(height, 2),
                    f"{_range(index)}: {count:,} ({share})",
                )
            )
        model = row.keys.get("model")
        p50, p90 = took(row.p50_seconds), took(row.p90_seconds)
        label = f"{model or 'no model'}: {total:,} completed, p50 {p50}, p90 {p90}."
        drawn.append(Histogram(model, total, bins, p50, p90, label))
    return drawn


def _range(index: int) -> str:
    edges = [_span(edge) for edge in DURATION_EDGES]
    if index == 0:
        return f"under {edges[0]}"
    if index == len(edges):
        return f"{edges[-1]} or more"
    return f"{edges[index - 1]} to {edges[index]}"


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass
class DayLines:
    """The p50 and p90 of each day's completed tasks: a line each, a point a day."""

    days: list[str]
    p50: list[Point] = field(default_factory=list)
    p90: list[Point] = field(default_factory=list)
    top: float = 1.0
    label: str = ""

    @property
    def axis(self) -> tuple[str, str]:
        """The labels of the top and the middle of the axis."""
        return _span(self.top), _span(self.top / 2)

    def path(self, points: Sequence[Point]) -> str:
        return "".join(f"{'L' if n else 'M'}{p.x},{p.y}" for n, p in enumerate(points))


def day_lines(rows: Sequence[ReportRow]) -> DayLines:
    """From the report by day: days without a completed task have no point."""
    days = [row.keys["day"] or "" for row in rows]
    lines = DayLines(days)
    top = nice_duration(max((row.p90_seconds or 0 for row in rows), default=0))
    lines.top = top
    step = WIDTH / max(len(rows) - 1, 1)
    for index, row in enumerate(rows):
        x = round(index * step if len(rows) > 1 else WIDTH / 2, 2)
        for value, points, name in (
            (row.p50_seconds, lines.p50, "p50"),
            (row.p90_seconds, lines.p90, "p90"),
        ):
            if value is not None:
                y = round(HEIGHT - HEIGHT * max(value, 0) / top, 2)
                points.append(Point(x, y, f"{days[index]}: {name} {took(value)}"))
    medians = [row.p50_seconds for row in rows if row.p50_seconds is not None]
    lines.label = (
        f"Over {len(rows)} days, the daily p50 ran from {took(min(medians))} to "
        f"{took(max(medians))}."
        if medians
        else "No task completed in the window."
    )
    return lines
