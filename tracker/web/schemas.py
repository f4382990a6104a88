"""What the API takes and gives, as pydantic models: they validate requests and write the
OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from tracker.core.daemons import DaemonRow, DaemonState
from tracker.core.encoding import timestamp_text
from tracker.core.follow_ups import Download
from tracker.core.ids import PROVIDER_NAME, check_task_id
from tracker.core.metadata import check_metadata
from tracker.core.models import Snapshot, Stats, Task
from tracker.errors import UsageError

MAX_TASKS_PER_CALL = 10_000
PROVIDER_PATTERN = f"^{PROVIDER_NAME}$"

Metadata = dict[str, Any]
#: A moment in the answers, in the one format of every output (core.encoding.timestamp_text).
Timestamp = Annotated[
    datetime,
    PlainSerializer(timestamp_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]

# A valid task ID (docs/cli.md, Task IDs) as a JSON Schema pattern, for the OpenAPI document: 1 to
# 256 printable ASCII characters but / ? # % \, and not "." or "..". Requests are checked by
# tracker.core.ids, whose messages say which rule an ID breaks.
_ID_CHARACTER = r"[!\"$&-.0->@-\[\]-~]"
_ID_CHARACTER_NOT_DOT = r"[!\"$&-\-0->@-\[\]-~]"
TASK_ID_PATTERN = (
    f"^(?:{_ID_CHARACTER}{{3,256}}|{_ID_CHARACTER_NOT_DOT}|{_ID_CHARACTER_NOT_DOT}{_ID_CHARACTER}"
    f"|{_ID_CHARACTER}{_ID_CHARACTER_NOT_DOT})$"
)


def _by_rule(check: Callable[[Any], Any]) -> AfterValidator:
    """tracker's own rule as a step of pydantic's validation, so that its errors and pydantic's
    come in one list, each where it belongs, in the words of the rule."""

    def checked(value: Any) -> Any:
        try:
            return check(value)
        except UsageError as exc:
            raise PydanticCustomError("tracker", str(exc)) from None

    return AfterValidator(checked)


TaskId = Annotated[
    str,
    Field(json_schema_extra={"pattern": TASK_ID_PATTERN, "minLength": 1, "maxLength": 256}),
    _by_rule(check_task_id),
]
MetadataIn = Annotated[Metadata, _by_rule(check_metadata)]
METADATA = "A JSON object of at most 16 KiB, given back with the task"


class NewTaskIn(BaseModel):
    """One task to register, with its own label, metadata and provider."""

    model_config = ConfigDict(extra="forbid")
    id: TaskId = Field(description="The video API's task ID")
    label: str | None = Field(default=None, max_length=1000)
    metadata: MetadataIn | None = Field(default=None, description=METADATA)
    provider: str | None = Field(default=None, pattern=PROVIDER_PATTERN)


class RegisterIds(BaseModel):
    """IDs sharing one label, metadata and provider; at most 10,000 in one call."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"ids": ["video_68f0a1", "sora-2:task_01HXYZ"], "label": "trailer"}]
        },
    )
    ids: list[TaskId] = Field(min_length=1, max_length=MAX_TASKS_PER_CALL)
    label: str | None = Field(default=None, max_length=1000)
    metadata: MetadataIn | None = Field(default=None, description=METADATA)
    provider: str | None = Field(default=None, pattern=PROVIDER_PATTERN)


class RegisterTasks(BaseModel):
    """Tasks each with its own label, metadata and provider; at most 10,000 in one call."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tasks": [{"id": "video_68f0a1", "metadata": {"user": 42}}]}]
        },
    )
    tasks: list[NewTaskIn] = Field(min_length=1, max_length=MAX_TASKS_PER_CALL)


def _form(body: Any) -> str:
    return "tasks" if isinstance(body, dict) and "tasks" in body else "ids"


# Read as one form or the other, chosen by its key, so that an error names the field of the
# form given (a JSON pointer without the form's tag: see problems.py).
RegisterIn = Annotated[
    Annotated[RegisterIds, Tag("ids")] | Annotated[RegisterTasks, Tag("tasks")],
    Discriminator(_form),
]
#: The tags pydantic puts first in the location of a field error of a RegisterIn or a BulkIn
#: body.
FORM_TAGS = frozenset({"ids", "tasks", "filter"})


class Registered(BaseModel):
    added: list[str]
    existing: list[str]


class TaskOut(BaseModel):
    """A task as the API shows it: its latest status and counts, and what its application gave."""

    task_id: str
    label: str | None
    metadata: Metadata | None
    provider: str
    status: str | None
    progress: int | None
    finished: bool
    finish_reason: str | None
    registered_at: Timestamp
    last_polled_at: Timestamp | None
    next_poll_at: Timestamp
    finished_at: Timestamp | None
    poll_count: int
    error_count: int
    last_error: str | None
    model: str | None
    seconds: str | None
    size: str | None
    created_at: Timestamp | None
    completed_at: Timestamp | None
    expires_at: Timestamp | None
    reopened_at: Timestamp | None = Field(
        default=None, description="When it was last watched again after it ended"
    )

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        fields = {name: getattr(task, name) for name in cls.model_fields}
        return cls(**fields)


class DownloadOut(BaseModel):
    variant: str
    state: str
    path: str | None
    size_bytes: int | None
    sha256: str | None
    downloaded_at: Timestamp | None
    expires_at: Timestamp | None
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, download: Download) -> DownloadOut:
        return cls(**{name: getattr(download, name) for name in cls.model_fields})


class NotificationOut(BaseModel):
    channel: str
    event_id: str
    state: str
    attempts: int
    created_at: Timestamp
    delivered_at: Timestamp | None
    last_error: str | None


class TaskDetail(TaskOut):
    """A task with its files and its notifications."""

    downloads: list[DownloadOut]
    notifications: list[NotificationOut]


class TaskPage(BaseModel):
    tasks: list[TaskOut]
    next_cursor: str | None = Field(description="Pass it as `cursor` for the next page")


class SnapshotOut(BaseModel):
    id: int
    task_id: str
    polled_at: Timestamp
    http_status: int | None
    status: str | None
    progress: int | None
    error: Any
    body: Any
    finished: bool
    latency_ms: float | None

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotOut:
        return cls(**{name: getattr(snapshot, name) for name in cls.model_fields})


class SnapshotPage(BaseModel):
    snapshots: list[SnapshotOut]
    next_cursor: str | None = Field(description="Pass it as `cursor` for the next page")


class PauseOut(BaseModel):
    """A provider's API paused as a whole: none of its tasks is polled before ``paused_until``."""

    provider: str
    paused_until: Timestamp
    reason: str = Field(description="rate_limited (a 429) or refused (a 401 or 403)")
    refusals: int
    updated_at: Timestamp
    waiting: int | None = Field(description="the provider's unfinished tasks")


class StatsOut(BaseModel):
    """What ``tracker stats --json`` gives."""

    at: Timestamp
    unfinished: int
    finished: dict[str, int]
    due: int
    held: int
    oldest_unfinished: Timestamp | None
    snapshots_last_minute: int
    errors_last_minute: int
    polls_total: int
    downloads: dict[str, int]
    notifications: dict[str, int]
    paused: list[PauseOut]
    unfinished_by_provider: dict[str, int]

    @classmethod
    def of(cls, stats: Stats) -> StatsOut:
        values = {name: getattr(stats, name) for name in cls.model_fields}
        values["paused"] = [PauseOut.model_validate(vars(pause)) for pause in stats.paused]
        return cls(**values)


class DaemonOut(BaseModel):
    """A daemon at work on the database, or that was: a row of ``daemons`` and its state."""

    daemon_id: str = Field(description="what its leases name as their owner")
    host: str
    pid: int
    version: str
    started_at: Timestamp
    last_seen_at: Timestamp
    stopped_at: Timestamp | None
    providers: list[str]
    held: int = Field(description="tasks it held the lease of at its last beat")
    polls_last_minute: int
    state: DaemonState = Field(
        description="lost: not seen for three beats (15 s) without having stopped"
    )

    @classmethod
    def of(cls, row: DaemonRow, now: datetime) -> DaemonOut:
        return cls(**vars(row), state=row.state(now))


class DaemonList(BaseModel):
    daemons: list[DaemonOut]


class Removed(BaseModel):
    task: TaskOut
    removed: bool = Field(description="False when the task had already finished")


class BulkFilter(BaseModel):
    """Which tasks, as ``GET /v1/tasks`` selects them; an empty filter matches every task."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(default=None, description="The last status, any case")
    finished: bool | None = Field(default=None, strict=True)  # 0 is no answer to "finished?"
    label: str | None = None
    provider: str | None = None
    prefix: str | None = Field(default=None, description="Task IDs starting with this")


class BulkIds(BaseModel):
    """Tasks by ID, at most 10,000; unknown ones are left out."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"ids": ["video_68f0a1"]}]}
    )
    ids: list[TaskId] = Field(min_length=1, max_length=MAX_TASKS_PER_CALL)


class BulkByFilter(BaseModel):
    """Every task a filter matches, however many."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"filter": {"label": "trailer"}}]}
    )
    filter: BulkFilter


def _bulk_form(body: Any) -> str:
    """Both keys read as IDs, so that the error names ``filter`` as the one too many."""
    is_filter = isinstance(body, dict) and "filter" in body and "ids" not in body
    return "filter" if is_filter else "ids"


# The tasks to act on: ``ids`` or ``filter``, exactly one of them.
BulkIn = Annotated[
    Annotated[BulkIds, Tag("ids")] | Annotated[BulkByFilter, Tag("filter")],
    Discriminator(_bulk_form),
]


class BulkOut(BaseModel):
    matched: int = Field(description="The tasks the IDs or the filter selected")
    changed: int = Field(description="Those the action changed")


class Health(BaseModel):
    status: str
    database: str
    scheduler: str | None = None
    seconds_since_tick: float | None = None


_KEY = "Present when the rows are grouped by it; null for tasks without the value"


class ReportRowOut(BaseModel):
    """One group of the report: its keys (those asked for in ``by``), the tasks in each
    state, the failure rate, how long the completed ones took and how long tasks waited
    (docs/insights.md)."""

    model: str | None = Field(default=None, description=_KEY)
    size: str | None = Field(default=None, description=_KEY)
    seconds: str | None = Field(default=None, description=_KEY)
    provider: str | None = Field(default=None, description=_KEY)
    label: str | None = Field(default=None, description=_KEY)
    day: str | None = Field(default=None, description=f"{_KEY}; the UTC day, 2026-12-06")
    hour: str | None = Field(
        default=None, description=f"{_KEY}; the UTC hour, 2026-12-06T13:00:00Z"
    )
    tasks: int
    unfinished: int
    completed: int
    failed: int
    not_found: int
    timed_out: int
    removed: int
    failure_rate: float | None = Field(description="failed / (completed + failed)")
    p50_seconds: float | None = Field(description="Of the completed tasks, nearest-rank")
    p90_seconds: float | None
    p99_seconds: float | None
    queue_p50_seconds: float | None = Field(
        description="From the start to the first poll that saw the video being made"
    )
    polls_per_task: float


class ReportOut(BaseModel):
    """What ``tracker report --json`` gives, in ``rows``, with the window it covers."""

    since: datetime = Field(description="The window's start (included)")
    until: datetime | None = Field(description="The window's end (left out); null: now")
    rows: list[ReportRowOut]
