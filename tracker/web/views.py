"""What the dashboard draws from a task's polls: its tone (the colour family of a status, whose
text is always printed beside it), the timeline of its statuses with how long each lasted, and
the chart of its progress over time (an inline SVG, drawn here, with no script)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tracker.core.models import FinishReason, Task
from tracker.core.texts import duration, error_line
from tracker.core.video import FAILURE_STATUSES, QUEUED_STATUSES, SUCCESS_STATUSES, Phase
from tracker.store.timeline import Point

TONE_NAMES = {
    "unknown": "no answer",
    "queued": "waiting",
    "running": "running",
    "done": "completed",
    "failed": "failed",
    "ended": "ended",
}
# Every character with a case mapping of its own, or that is white space, is in the first two
# planes of Unicode.
CASED_PLANES = 0x20000
# A badge's words for a task no poll has given a status yet (or ever: a 404 from the start).
NO_STATUS = "no status"
# The timeline's words for the moment an ended task was watched again.
REOPENED = "reopened"
# The overview's label column, in characters (dashboard.css, .labels-N): the narrowest step that
# holds the page's longest label, so that the last error has the rest; a longer one wraps.
LABEL_WIDTHS = (8, 12, 16, 20, 28, 40)
CHART_WIDTH = 1000  # the viewBox's units; the chart stretches to its box
MARK_COLUMNS = 250  # errors closer than a 250th of the chart share one mark


def tone(status: str | None, finish_reason: str | None = None) -> str:
    """``done``, ``failed``, ``ended`` (not found, timed out, removed), ``queued``,
    ``running``, or ``unknown`` (never answered)."""
    if finish_reason == FinishReason.COMPLETED:
        return "done"
    if finish_reason == FinishReason.FAILED:
        return "failed"
    if finish_reason is not None:
        return "ended"
    if status is None:
        return "unknown"
    phase = Phase.of(status)
    if phase is Phase.SUCCEEDED:
        return "done"
    if phase is Phase.FAILED:
        return "failed"
    return "queued" if status.strip().casefold() in QUEUED_STATUSES else "running"


def state_tones() -> dict[str, str]:
    """The tone of each state the overview counts."""
    return {
        "unfinished": "running",
        **{reason.value: tone(None, reason) for reason in FinishReason},
    }


def status_text(status: str | None) -> str:
    """What a status badge says."""
    return status or NO_STATUS


def label_width(labels: Iterable[str | None]) -> int:
    """The label column's width for these labels: a step of ``LABEL_WIDTHS``."""
    longest = max((len(label) for label in labels if label), default=0)
    return next((width for width in LABEL_WIDTHS if longest <= width), LABEL_WIDTHS[-1])


def script_rules() -> dict[str, Any]:
    """What the pages' script needs to write live updates as the server writes them: the
    spellings ``tone`` knows; Python's white space (``str.strip``'s, which is not
    JavaScript's ``trim``'s) and the characters whose case folding is not their lower case
    (which ``toLowerCase`` gives) where either could spell one of those words (a sharp s folds
    to ``ss``, a long s to ``s``), so that the script's ``tone`` is this one; a badge's words
    without a status."""
    words = {
        "done": sorted(SUCCESS_STATUSES),
        "failed": sorted(FAILURE_STATUSES),
        "queued": sorted(QUEUED_STATUSES),
    }
    letters = set("".join(word for spellings in words.values() for word in spellings))
    folds: dict[str, str] = {}
    spaces: list[str] = []
    for code in range(CASED_PLANES):
        char = chr(code)
        folded, lowered = char.casefold(), char.lower()
        if folded != lowered and (set(folded) <= letters or set(lowered) <= letters):
            folds[char] = folded
        if char.isspace():
            spaces.append(char)
    return {"tones": words, "folds": folds, "spaces": "".join(spaces), "no_status": NO_STATUS}


def failed_poll(point: Point) -> bool:
    """A poll that got no video (an HTTP error, a timeout, an unreadable answer)."""
    return point.status is None and point.error is not None


def point_error(point: Point) -> str | None:
    if point.error is None:
        return None
    return error_line(point.error, point.http_status if failed_poll(point) else None)


@dataclass
class Run:
    """Consecutive polls that saw one status (failed polls count in the run they fell in)."""

    status: str | None
    tone: str
    start: datetime
    end: datetime
    polls: int = 0
    errors: int = 0
    ongoing: bool = False  # the task's status now, still lasting
    final: bool = False  # the status the task finished on
    reopened: bool = False  # no poll's: the moment the ended task was watched again

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def words(self) -> str:
        """``in progress 3 min 10 s``, ``completed``, ``reopened``."""
        name = (self.status or "no answer").replace("_", " ")
        return name if self.final or self.reopened else f"{name} {duration(self.end - self.start)}"


def reopening(at: datetime) -> Run:
    """The timeline's line of a reopening: no snapshot marks it, the task's row does."""
    return Run(REOPENED, tone(None, FinishReason.REMOVED), at, at, reopened=True)


def timeline(points: Sequence[Point], task: Task, now: datetime) -> list[Run]:
    """The runs of statuses, and where the task was last reopened, a line of its own between
    the polls before and after."""
    runs: list[Run] = []
    reopened_at = task.reopened_at
    for point in points:
        if reopened_at is not None and point.polled_at >= reopened_at:
            if runs:
                runs[-1].end = reopened_at
            runs.append(reopening(reopened_at))
            reopened_at = None
        if failed_poll(point) and runs and not runs[-1].reopened:
            runs[-1].polls += 1
            runs[-1].errors += 1
            continue
        if not runs or runs[-1].reopened or runs[-1].status != point.status:
            if runs:
                runs[-1].end = point.polled_at
            runs.append(Run(point.status, tone(point.status), point.polled_at, point.polled_at))
        runs[-1].polls += 1
        runs[-1].errors += failed_poll(point)
    if reopened_at is not None:  # not polled since
        if runs:
            runs[-1].end = reopened_at
        runs.append(reopening(reopened_at))
    if runs:
        last = runs[-1]
        if task.finished:
            last.end = task.finished_at or last.start
            last.final = last.status is not None and Phase.of(last.status) is not Phase.RUNNING
            last.tone = tone(last.status, task.finish_reason)
        else:
            last.end, last.ongoing = max(now, last.start), True
    return runs


@dataclass(frozen=True)
class Band:
    x: float
    width: float
    tone: str
    title: str


@dataclass(frozen=True)
class Mark:
    x: float
    title: str


@dataclass
class Chart:
    start: datetime
    end: datetime
    bands: list[Band] = field(default_factory=list)
    path: str = ""  # the progress line, an SVG path in viewBox units (y = 100 - percent)
    marks: list[Mark] = field(default_factory=list)
    label: str = ""  # what the chart shows, in words, for screen readers

    @property
    def span(self) -> str:
        return duration(self.end - self.start)


def chart(points: Sequence[Point], runs: Sequence[Run], task: Task, now: datetime) -> Chart:
    """Progress over time, from registration to the end (or now), on bands of the statuses,
    with the failed polls marked."""
    start = task.registered_at
    end = task.finished_at or now
    if points:
        end = max(end, points[-1].polled_at)
    total = max((end - start).total_seconds(), 1e-3)

    def x(moment: datetime) -> float:
        offset = (moment - start).total_seconds() / total
        return round(min(max(offset, 0.0), 1.0) * CHART_WIDTH, 1)

    drawn = Chart(start, end)
    for run in runs:
        left, right = x(run.start), x(run.end)
        title = run.words + (f" ({run.errors} failed polls)" if run.errors else "")
        drawn.bands.append(Band(left, max(right - left, 0.5), run.tone, title))
    steps: list[str] = []
    shown: int | None = None
    for point in points:
        if point.progress is None or point.progress == shown:
            continue
        at, height = x(point.polled_at), 100 - point.progress
        steps.append(f"M{at},{height}" if shown is None else f"H{at}V{height}")
        shown = point.progress
    if steps and points:
        steps.append(f"H{x(points[-1].polled_at)}")
    drawn.path = "".join(steps)
    drawn.marks = _marks(points, x)
    drawn.label = _label(points, runs, drawn)
    return drawn


def _marks(points: Sequence[Point], x: Any) -> list[Mark]:
    columns: dict[int, tuple[float, int, str]] = {}
    for point in points:
        if not failed_poll(point):
            continue
        at = x(point.polled_at)
        column = int(at * MARK_COLUMNS / CHART_WIDTH)
        first_x, count, _ = columns.get(column, (at, 0, ""))
        text = point_error(point) or "failed poll"
        columns[column] = (first_x, count + 1, f"{point.polled_at:%H:%M:%S} {text}")
    return [
        Mark(at, text if count == 1 else f"{count} failed polls, the last: {text}")
        for at, count, text in columns.values()
    ]


def _label(points: Sequence[Point], runs: Sequence[Run], drawn: Chart) -> str:
    progress = [point.progress for point in points if point.progress is not None]
    words = ", ".join(run.words for run in runs) or "not polled yet"
    failed = sum(failed_poll(point) for point in points)
    moved = f"progress {progress[0]}% to {progress[-1]}%; " if progress else ""
    errors = f"; {failed} failed polls" if failed else ""
    return f"Over {drawn.span}: {moved}{words}{errors}."


def total_time(task: Task, now: datetime) -> timedelta:
    return (task.finished_at or now) - task.registered_at
