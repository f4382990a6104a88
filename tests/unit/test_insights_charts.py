"""What the Insights page's charts draw, worked out without a browser: the axes' tops, the bars of
each hour, each model's histogram, the lines of the days; and how the page reads its form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracker.core.report import Group, GroupKey, HourFinishes, ReportRow
from tracker.core.texts import took
from tracker.web.charts import (
    bin_names,
    day_lines,
    histograms,
    hour_bars,
    nice_ceiling,
    nice_duration,
)
from tracker.web.insights import Choice

START = datetime(2026, 12, 5, 10, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (7, 8), (23, 30), (41, 50), (61, 80), (999, 1000)]
)
def test_a_counts_axis_tops_at_a_round_number_just_above(value: float, top: float) -> None:
    assert nice_ceiling(value) == top


@pytest.mark.parametrize(
    ("seconds", "top"), [(0, 10), (45, 60), (200, 240), (450, 480), (2500, 3600), (9000, 10800)]
)
def test_a_durations_axis_tops_at_whole_minutes_or_hours(seconds: float, top: float) -> None:
    assert nice_duration(seconds) == top


def test_each_hour_is_a_column_and_each_finish_a_bar_in_it() -> None:
    """From the hour of the start to the hour of the end: 3 columns of 333.33 units; the 11:00
    hour's 3 completed and 1 failed stack to the top of an axis of 4."""
    finishes = [
        HourFinishes(START.replace(minute=0) + timedelta(hours=1), 3, 1),
        HourFinishes(START.replace(minute=0) + timedelta(hours=2), 0, 2),
    ]
    bars = hour_bars(finishes, START, START + timedelta(hours=2))
    assert (bars.start.hour, bars.end.hour, bars.top) == (10, 12, 4)
    # A bar leaves 15% of its column free: 25 units each side.
    assert bars.completed == "M358.33,25.00h283.33v75.00h-283.33z"
    assert bars.failed == "M358.33,0.00h283.33v25.00h-283.33zM691.67,50.00h283.33v50.00h-283.33z"
    assert bars.label == (
        "3 completed and 3 failed over 3 hours; the busiest hour, 2026-12-05 11:00 UTC, 4."
    )
    quiet = hour_bars([], START, START + timedelta(days=1))
    assert (quiet.completed, quiet.failed, quiet.top) == ("", "", 1)


def group(model: str | None, took: list[int]) -> Group:
    """A model's group: a completed task per duration, and one still running."""
    n = len(took)
    return Group({"model": model}, n + 1, 1, n, 0, 0, 0, 0, n, took, [])


def test_a_models_histogram_is_its_share_of_each_range() -> None:
    [drawn] = histograms([group("sora-2", [10_000, 70_000, 80_000, 4_000_000]), group("x", [])])
    assert bin_names() == ["<30s", "30s", "1m", "2m", "3m", "5m", "10m", "15m", "30m", "1h+"]
    assert [b.title for b in drawn.bins if "0 (0%)" not in b.title] == [
        "under 30s: 1 (25%)",
        "1m00s to 2m00s: 2 (50%)",
        "1h00m or more: 1 (25%)",
    ]
    # The tallest bar fills the height; the others are in proportion.
    assert [b.height for b in drawn.bins if b.height] == [50.0, 100.0, 50.0]
    assert (drawn.p50, drawn.p90) == ("1m10s", "1h06m")


def test_the_days_lines_skip_a_day_without_completions() -> None:
    def row(day: str, p50: float | None, p90: float | None) -> ReportRow:
        return ReportRow({"day": day}, 1, 0, 1, 0, 0, 0, 0, None, p50, p90, p90, None, 1.0)

    lines = day_lines(
        [row("2026-12-04", 60, 200), row("2026-12-05", None, None), row("2026-12-06", 90, 230)]
    )
    assert lines.top == 240
    assert [(p.x, p.y) for p in lines.p50] == [(0.0, 75.0), (1000.0, 62.5)]
    assert lines.path(lines.p90) == "M0.0,16.67L1000.0,4.17"
    assert lines.p90[1].title == "2026-12-06: p90 3m50s"
    assert lines.label == "Over 3 days, the daily p50 ran from 1m00s to 1m30s."
    assert lines.axis == ("4m00s", "2m00s")


@pytest.mark.parametrize(
    ("since", "by", "window", "keys"),
    [
        ("7d", None, "7d", (GroupKey.MODEL,)),
        ("1y", None, "7d", (GroupKey.MODEL,)),
        ("30d", ["", "size", "nonsense", "day", "size"], "30d", (GroupKey.SIZE, GroupKey.DAY)),
        ("24h", [""], "24h", ()),
    ],
)
def test_the_form_is_read_forgivingly(
    since: str, by: list[str] | None, window: str, keys: tuple[GroupKey, ...]
) -> None:
    choice = Choice.of(since, by)
    assert (choice.window, choice.keys) == (window, keys)


def test_a_reports_duration_reads_the_same_in_the_terminal_and_the_browser() -> None:
    assert [took(None), took(45.3), took(-2), took(146.9), took(3900)] == [
        "—",
        "45.3s",
        "-2.0s",
        "2m26s",
        "1h05m",
    ]
