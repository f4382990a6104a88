"""What the dashboard draws from a task's polls: tones, the timeline with its durations, the
chart's bands, line and marks; durations in words; where signing in may lead."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tracker.core.models import Task
from tracker.core.texts import duration
from tracker.store.timeline import Point
from tracker.web.login import safe_next
from tracker.web.views import CHART_WIDTH, chart, timeline, tone

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
FAILED_POLL = {"type": "http_error", "message": "upstream busy"}


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def point(number: int, seconds: float, status: str | None, progress: int | None) -> Point:
    error = FAILED_POLL if status is None else None
    return Point(number, at(seconds), 503 if status is None else 200, status, progress, error)


POINTS = [
    point(1, 2, "queued", 0),
    point(2, 20, "queued", 0),
    point(3, 44, "in_progress", 10),
    point(4, 100, None, None),
    point(5, 150, "in_progress", 60),
    point(6, 234, "completed", 100),
]
TASK = replace(
    Task.registered("video_a", None, START),
    status="completed",
    progress=100,
    finished=True,
    finish_reason="completed",
    finished_at=at(234),
)


def test_tones_follow_the_status_in_any_spelling_and_how_the_task_ended() -> None:
    """Relays' words colour like OpenAI's; a finish reason decides over the status."""
    assert [tone(s) for s in ("queued", "SUBMITTED", "in_progress", "SUCCESS", "FAILURE")] == [
        "queued",
        "queued",
        "running",
        "done",
        "failed",
    ]
    assert tone(None) == "unknown"
    assert tone("in_progress", "removed") == "ended"
    assert tone("in_progress", "timed_out") == "ended"


def test_the_timeline_says_how_long_each_status_lasted_and_counts_failed_polls() -> None:
    """Runs of one status from its first poll to the next status's; a failed poll counts in
    the run it fell in; the status the task finished on has no duration."""
    runs = timeline(POINTS, TASK, at(300))
    assert [(run.status, run.seconds, run.polls, run.errors) for run in runs] == [
        ("queued", 42.0, 2, 0),
        ("in_progress", 190.0, 3, 1),
        ("completed", 0.0, 1, 0),
    ]
    assert ", ".join(run.words for run in runs) == "queued 42 s, in progress 3 min 10 s, completed"
    assert runs[-1].tone == "done" and runs[-1].final


def test_an_unfinished_tasks_last_status_lasts_until_now() -> None:
    """Still running: the last run is ongoing, up to the moment of the page."""
    unfinished = replace(TASK, finished=False, finish_reason=None, finished_at=None)
    runs = timeline(POINTS[:3], unfinished, at(100))
    assert runs[-1].ongoing and runs[-1].seconds == 56.0
    assert runs[-1].words == "in progress 56 s"


def test_the_chart_spans_registration_to_the_end_with_a_band_per_status() -> None:
    """Bands cover the statuses in time order; the progress line steps at each change; the
    failed poll is a mark that says its error."""
    runs = timeline(POINTS, TASK, at(300))
    drawn = chart(POINTS, runs, TASK, at(300))
    assert (drawn.start, drawn.end) == (START, at(234))
    assert [band.tone for band in drawn.bands] == ["queued", "running", "done"]
    lefts = [band.x for band in drawn.bands]
    assert lefts == sorted(lefts) and drawn.bands[0].x > 0
    assert drawn.path.startswith("M8.5,100") and drawn.path.endswith(f"H{CHART_WIDTH}.0")
    assert "V40" in drawn.path and "V0" in drawn.path
    [mark] = drawn.marks
    assert mark.x == round(100 / 234 * CHART_WIDTH, 1)
    assert "HTTP 503: upstream busy" in mark.title
    assert "3 min 10 s" in drawn.label and "1 failed polls" in drawn.label


def test_failed_polls_close_together_share_one_mark() -> None:
    """Hundreds of failed polls do not make hundreds of marks: those within a 250th of the
    chart are one, counted."""
    many = [point(n, 99.3 + n * 0.002, None, None) for n in range(1, 300)]  # one column
    drawn = chart(many, timeline(many, TASK, at(300)), TASK, at(300))
    assert len(drawn.marks) == 1
    assert drawn.marks[0].title.startswith("299 failed polls")


def test_durations_read_in_the_two_largest_units() -> None:
    assert [duration(timedelta(seconds=s)) for s in (0.4, 42, 60, 190, 3700, 97200)] == [
        "0 s",
        "42 s",
        "1 min",
        "3 min 10 s",
        "1 h 1 min",
        "1 d 3 h",
    ]


def test_signing_in_leads_only_to_a_page_of_this_site() -> None:
    """`next` is a path here; another site, a scheme or a backslash trick leads home."""
    assert safe_next("/tasks/video_a?after=x") == "/tasks/video_a?after=x"
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "", None, "x"):
        assert safe_next(target) == "/"


def test_a_reopening_is_a_line_of_its_own_between_the_polls_around_it() -> None:
    """No snapshot marks a reopening: its line comes from the task's reopened_at, closing the
    run before it; a failed poll after it starts a run of its own; a reopening not polled since
    is the last line."""
    removed = [point(1, 2, "in_progress", 10), point(2, 60, "in_progress", 10)]
    after = [point(3, 130, None, None), point(4, 140, "in_progress", 20)]
    task = replace(TASK, status="in_progress", finished=False, finish_reason=None, finished_at=None)
    runs = timeline([*removed, *after], replace(task, reopened_at=at(120)), at(150))
    assert [(run.status, run.reopened, run.polls, run.errors) for run in runs] == [
        ("in_progress", False, 2, 0),
        ("reopened", True, 0, 0),
        (None, False, 1, 1),
        ("in_progress", False, 1, 0),
    ]
    assert runs[0].end == at(120) and runs[1].start == at(120)
    assert runs[1].words == "reopened"
    waiting = timeline(removed, replace(task, reopened_at=at(120)), at(125))
    assert [run.status for run in waiting] == ["in_progress", "reopened"]
    assert waiting[0].seconds == 118.0 and waiting[-1].ongoing
