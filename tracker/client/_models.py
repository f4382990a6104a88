"""What the API gives, as frozen dataclasses read from its JSON: times as aware datetimes, the
finish reason as a ``FinishReason``. Fields a newer server adds are passed over; a field this
client needs and the answer lacks is an ``UnexpectedResponse`` (one with a default was added
after servers the client still reads, which leave it out)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, Union

from tracker.client._errors import UnexpectedResponse

Metadata = dict[str, Any]


class FinishReason(enum.StrEnum):
    """Why a task is no longer polled (docs/http-api.md). A reason from a server newer than
    this client stays the plain string it sent."""

    COMPLETED = "completed"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    TIMED_OUT = "timed_out"
    REMOVED = "removed"


@dataclass(frozen=True)
class Task:
    """A task as ``GET /v1/tasks`` lists it: its latest status and counts, and what its
    application gave it."""

    task_id: str
    label: str | None
    metadata: Metadata | None
    provider: str
    status: str | None
    progress: int | None
    finished: bool
    finish_reason: FinishReason | str | None
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
    #: When it was last watched again after it ended (an older server says nothing of it).
    reopened_at: datetime | None = dataclasses.field(default=None, kw_only=True)


@dataclass(frozen=True)
class Download:
    """A file of a finished task, fetched by the daemon (docs/follow-ups.md)."""

    variant: str
    state: str
    path: str | None
    size_bytes: int | None
    sha256: str | None
    downloaded_at: datetime | None
    expires_at: datetime | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Notification:
    """A notification a finished task owes, and how its delivery went."""

    channel: str
    event_id: str
    state: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class TaskDetail(Task):
    """One task as ``GET /v1/tasks/{id}`` gives it: a ``Task`` with its downloads and its
    notifications."""

    downloads: tuple[Download, ...]
    notifications: tuple[Notification, ...]


@dataclass(frozen=True)
class Snapshot:
    """What one poll of a task saw (a row of ``snapshots``)."""

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


@dataclass(frozen=True)
class AddResult:
    """The IDs ``add`` registered, and those that were registered already (left as they were)."""

    added: tuple[str, ...]
    existing: tuple[str, ...]


@dataclass(frozen=True)
class Removal:
    """What ``remove`` did: the task as it now is, and False if it had finished already."""

    task: Task
    removed: bool


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did: the tasks the IDs or the filter selected (``matched``), and
    those the action changed (``changed``); a task the action does not take is matched only."""

    matched: int
    changed: int


@dataclass(frozen=True)
class SnapshotEvent:
    """``event: snapshot``: a new snapshot of a task. ``id`` is the snapshot's own;
    ``last_event_id`` is where the stream stands after it (resume from there with
    ``events(last_event_id=...)``)."""

    id: int
    task_id: str
    label: str | None
    polled_at: datetime
    http_status: int | None
    status: str | None
    progress: int | None
    error: Any
    finished: bool
    last_event_id: str | None


@dataclass(frozen=True)
class FinishedEvent:
    """``event: finished``: a task finished (right after the snapshot that finished it), with
    its label and metadata."""

    task_id: str
    label: str | None
    metadata: Metadata | None
    status: str | None
    progress: int | None
    finish_reason: FinishReason | str | None
    finished_at: datetime | None
    last_event_id: str | None


@dataclass(frozen=True)
class ResetEvent:
    """``event: reset``: the stream could not resume where it was asked to (the server's
    database never gave that position: it was recreated, or the ID came from another tracker)
    and goes on from ``position``. What happened in between was not sent: read afresh what
    you follow."""

    position: str
    detail: str
    last_event_id: str | None


Event = SnapshotEvent | FinishedEvent | ResetEvent
_EVENTS: dict[str, type[Event]] = {
    "snapshot": SnapshotEvent,
    "finished": FinishedEvent,
    "reset": ResetEvent,
}

T = TypeVar("T")


def read(cls: type[T], value: object, **given: Any) -> T:
    """A ``cls`` from a JSON object, each field converted as its type says; ``given`` are
    fields that come from elsewhere than the object."""
    if not isinstance(value, Mapping):
        raise UnexpectedResponse(f"expected a JSON object for {cls.__name__}, got {value!r:.80}")
    values = dict(given)
    for name, kind in _field_types(typing.cast(type, cls)).items():
        if name in values:
            continue
        if name not in value and name in _defaulted(typing.cast(type, cls)):
            continue  # a field servers added later: older ones leave it out
        if name not in value:
            raise UnexpectedResponse(f"{cls.__name__} without {name!r}: {dict(value)!r:.200}")
        values[name] = _convert(kind, value[name], cls.__name__, name)
    return cls(**values)


def event_of(kind: str, data: str, last_event_id: str | None) -> Event | None:
    """The typed event of an event stream's ``event:`` and ``data:``, or None for a kind this
    client does not know (a newer server's)."""
    cls = _EVENTS.get(kind)
    if cls is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        raise UnexpectedResponse(f"event {kind!r} whose data is not JSON: {data!r:.200}") from None
    return read(cls, value, last_event_id=last_event_id)


@functools.cache
def _field_types(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


@functools.cache
def _defaulted(cls: type[Any]) -> frozenset[str]:
    return frozenset(
        field.name for field in dataclasses.fields(cls) if field.default is not dataclasses.MISSING
    )


def _convert(kind: Any, value: object, owner: str, name: str) -> Any:
    optional = _is_union(kind) and type(None) in typing.get_args(kind)
    if value is None:
        if optional or kind is Any:
            return None
        raise UnexpectedResponse(f"{owner} with no {name!r}")
    members = set(typing.get_args(kind)) - {type(None)} if _is_union(kind) else {kind}
    try:
        if datetime in members:
            return datetime.fromisoformat(str(value))
        if FinishReason in members:
            return _finish_reason(str(value))
        record = next(
            (m for m in members if isinstance(m, type) and dataclasses.is_dataclass(m)), None
        )
        if record is not None:
            return read(record, value)
        nested = next((typing.get_args(m)[0] for m in members if _is_tuple(m)), None)
        if nested is not None:
            return tuple(read(nested, item) for item in typing.cast(list[object], value))
    except (TypeError, ValueError) as exc:
        raise UnexpectedResponse(f"{owner} with an unreadable {name!r}: {value!r:.80}") from exc
    return value


def _finish_reason(value: str) -> FinishReason | str:
    try:
        return FinishReason(value)
    except ValueError:
        return value


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (Union, types.UnionType)


def _is_tuple(kind: Any) -> bool:
    return typing.get_origin(kind) is tuple
