"""What the API takes and gives, as pydantic models: they validate requests and write the
OpenAPI document."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracker.core.models import Download, Snapshot, Stats, Task

MAX_TASKS_PER_CALL = 10_000
MAX_METADATA_BYTES = 16 * 1024
PROVIDER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

Metadata = dict[str, Any]


def metadata_size(metadata: Metadata) -> int:
    """Its size as stored: compact JSON in UTF-8."""
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())


class NewTaskIn(BaseModel):
    """One task to register, with its own label, metadata and provider."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256, description="The video API's task ID")
    label: str | None = Field(default=None, max_length=1000)
    metadata: Metadata | None = Field(
        default=None, description="A JSON object of at most 16 KiB, given back with the task"
    )
    provider: str | None = Field(default=None, pattern=PROVIDER_PATTERN)


class RegisterIn(BaseModel):
    """Tasks to register: ``ids`` sharing one label, metadata and provider, or ``tasks`` each
    with its own; at most 10,000 in one call."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"ids": ["video_68f0a1", "sora-2:task_01HXYZ"], "label": "launch trailer"},
                {"tasks": [{"id": "video_68f0a1", "metadata": {"user": 42, "order": "A-17"}}]},
            ]
        },
    )
    ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_TASKS_PER_CALL)
    label: str | None = Field(default=None, max_length=1000)
    metadata: Metadata | None = None
    provider: str | None = Field(default=None, pattern=PROVIDER_PATTERN)
    tasks: list[NewTaskIn] | None = Field(default=None, min_length=1, max_length=MAX_TASKS_PER_CALL)

    @model_validator(mode="after")
    def one_form(self) -> RegisterIn:
        if (self.ids is None) == (self.tasks is None):
            raise ValueError("give either ids (with label, metadata, provider) or tasks")
        if self.tasks is not None and (self.label or self.metadata or self.provider):
            raise ValueError("with tasks, each task carries its own label, metadata, provider")
        return self


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
    registered_at: datetime
    last_polled_at: datetime | None
    next_poll_at: datetime
    finished_at: datetime | None
    poll_count: int
    error_count: int
    last_error: str | None
    model: str | None
    seconds: str | None
    size: str | None
    created_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None

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
    downloaded_at: datetime | None
    expires_at: datetime | None
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
    created_at: datetime
    delivered_at: datetime | None
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
    polled_at: datetime
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


class StatsOut(BaseModel):
    """What ``tracker stats --json`` gives."""

    at: datetime
    unfinished: int
    finished: dict[str, int]
    due: int
    held: int
    oldest_unfinished: datetime | None
    snapshots_last_minute: int
    errors_last_minute: int
    polls_total: int
    downloads: dict[str, int]
    notifications: dict[str, int]

    @classmethod
    def of(cls, stats: Stats) -> StatsOut:
        return cls(**{name: getattr(stats, name) for name in cls.model_fields})


class Removed(BaseModel):
    task: TaskOut
    removed: bool = Field(description="False when the task had already finished")


class Health(BaseModel):
    status: str
    database: str
    scheduler: str | None = None
    seconds_since_tick: float | None = None
