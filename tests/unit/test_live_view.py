"""The live view of `tracker demo` and `tracker watch` in an 80-column terminal: IDs told apart,
words whole, a failed task shown as failed."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rich.console import Console

from tracker.cli.demo import DEMO_TASKS
from tracker.cli.live import view
from tracker.core.models import Stats, Task
from tracker.core.texts import shorten_middle

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STATS = Stats(
    at=NOW,
    unfinished=0,
    finished={"completed": 3, "failed": 1, "not_found": 1},
    due=0,
    held=0,
    oldest_unfinished=None,
    snapshots_last_minute=34,
    errors_last_minute=4,
    polls_total=34,
    downloads={},
    notifications={},
)


def finished(task_id: str, status: str | None, progress: int | None, reason: str) -> Task:
    return replace(
        Task.registered(task_id, "demo", NOW - timedelta(seconds=5)),
        status=status,
        progress=progress,
        finished=True,
        finish_reason=reason,
        last_polled_at=NOW - timedelta(seconds=1),
        poll_count=7,
    )


def rendered(tasks: list[Task], width: int = 80, styles: bool = False) -> list[str]:
    console = Console(
        record=True,
        width=width,
        file=io.StringIO(),
        force_terminal=styles,
        color_system="standard",
    )
    console.print(view(STATS, tasks, rate=4.9, now=NOW, width=width))
    return console.export_text(styles=styles).splitlines()


def row_of(lines: list[str], task_id: str) -> str:
    return next(line for line in lines if task_id in line)


def test_the_demo_s_last_frame_fits_80_columns_with_whole_ids_and_words() -> None:
    """The demo's tasks, all finished, in 80 columns: every line fits, every ID is whole and
    every status and finish reason a whole word (no `video…unri…`, no `fi` or `co`)."""
    outcomes = {
        "video_sunrise": ("completed", 100, "completed"),
        "video_ocean": ("completed", 100, "completed"),
        "video_city": ("failed", 75, "failed"),
        "sora-2:task_relay": ("SUCCESS", 100, "completed"),
        "video_missing": (None, None, "not_found"),
    }
    assert set(outcomes) == set(DEMO_TASKS)
    lines = rendered([finished(task_id, *outcome) for task_id, outcome in outcomes.items()])
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    header = next(line for line in lines if line.startswith("task "))
    assert header.split()[-1] == "finished"
    for task_id, (status, _progress, reason) in outcomes.items():
        cells = row_of(lines, task_id).split()
        assert cells[0] == task_id
        assert cells[-1] == reason
        assert (status or "…") in cells


def test_a_failed_task_is_drawn_failed_at_the_progress_it_reached() -> None:
    """A task that failed at 75%: its bar stops at 75% in red, the rest dashed, and it says
    75%; not a grey bar at 0%."""
    failed = finished("video_city", "failed", 75, "failed")
    plain = row_of(rendered([failed]), "video_city")
    assert "75%" in plain.split()
    bar = plain.split()[1]
    assert bar.startswith("━") and bar.endswith("╌") and set(bar) == {"━", "╌"}
    assert bar.count("━") == round(len(bar) * 0.75)
    styled = row_of(rendered([failed], styles=True), "video_city")
    assert "\x1b[31m━" in styled  # red


def test_ids_cut_in_the_middle_keep_more_of_their_end() -> None:
    """IDs of one kind share their beginning: a cut keeps a third of it and two thirds of the
    end, where they differ, and cut IDs of a frame stay apart."""
    assert shorten_middle("video_demo_sunrise", 13) == "vide…_sunrise"
    assert shorten_middle("sora-2:task_01K5ZW3Q8J4X7T2M9N6B1C0D", 16) == "sora-…2M9N6B1C0D"
    assert shorten_middle("video_sunrise", 13) == "video_sunrise"
    ulids = [f"sora-2:task_01K5ZW3Q8J4X7T2M9N6B{end}" for end in ("1C0D", "7Q2R", "X4Y5")]
    tasks = [finished(task_id, "SUCCESS", 100, "completed") for task_id in ulids]
    tasks += [finished("video_" + "a" * 40 + "_sunrise", "completed", 100, "completed")]
    lines = rendered(tasks)
    cut = [row_of(lines, task_id[-4:]).split()[0] for task_id in ulids]
    assert len(set(cut)) == 3 and all("…" in text for text in cut)
    assert row_of(lines, "_sunrise").split()[0].endswith("aaa_sunrise")
