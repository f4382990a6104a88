"""tracker.client's refusals as typed exceptions (no I/O), its public names, and the wire
contract it shares with the server: the records' fields and the finish reasons."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest

import tracker.client
from tracker import TrackerError
from tracker.client import (
    ClientError,
    Conflict,
    ConnectionFailed,
    FieldError,
    InvalidRequest,
    NotFound,
    ProblemError,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    WaitTimeout,
)
from tracker.client._calls import MAX_IDS_PER_CALL
from tracker.client._errors import problem_of
from tracker.client._export import MEDIA_TYPES, ExportFormat, ExportTable
from tracker.core import exports as core_exports
from tracker.core import models as core
from tracker.core.feed import FeedItem
from tracker.web import events as server
from tracker.web import queries, schemas

DOCS = Path(__file__).resolve().parents[2] / "docs"


def problem(status: int, **fields: object) -> bytes:
    return json.dumps({"type": "about:blank", "status": status, **fields}).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, ProblemError),
        (404, NotFound),
        (405, ProblemError),
        (409, Conflict),
        (413, InvalidRequest),
        (422, InvalidRequest),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_each_status_is_its_own_kind_of_error(status: int, kind: type[ProblemError]) -> None:
    error = problem_of("GET /v1/x", status, problem(status, title="T", detail="D"))
    assert type(error) is kind
    assert (error.status, error.title, error.detail) == (status, "T", "D")
    assert str(error) == f"GET /v1/x: {status} T: D"


def test_a_refusal_names_its_fields_by_pointer_or_parameter() -> None:
    body = problem(
        422,
        title="Unprocessable Entity",
        detail="Nothing was registered: fix the fields named.",
        instance="/v1/tasks",
        errors=[
            {"detail": "invalid task ID 'a/b': contains '/'", "pointer": "/ids/3"},
            {"detail": "not a place", "parameter": "Last-Event-ID"},
        ],
    )
    error = problem_of("POST /v1/tasks", 422, body)
    assert isinstance(error, InvalidRequest) and error.instance == "/v1/tasks"
    assert error.errors == (
        FieldError("invalid task ID 'a/b': contains '/'", pointer="/ids/3"),
        FieldError("not a place", parameter="Last-Event-ID"),
    )
    assert str(error).endswith(
        "(/ids/3: invalid task ID 'a/b': contains '/'; Last-Event-ID: not a place)"
    )


def test_pointers_name_the_callers_index_when_a_call_sent_part_of_the_list() -> None:
    body = problem(
        422,
        title="T",
        errors=[{"detail": "bad", "pointer": "/ids/3/x"}, {"detail": "d", "pointer": "/label"}],
    )
    error = problem_of("POST /v1/tasks", 422, body, index_base=20_000)
    assert [e.pointer for e in error.errors] == ["/ids/20003/x", "/label"]


def test_an_error_without_a_problem_document_is_still_typed() -> None:
    """A proxy's HTML 502, an empty 404: the status decides; the title is the HTTP phrase."""
    bad_gateway = problem_of("GET /v1/tasks", 502, b"<html>Bad Gateway</html>")
    assert isinstance(bad_gateway, ServerError) and bad_gateway.title == "Bad Gateway"
    assert bad_gateway.detail is None and bad_gateway.errors == ()
    assert isinstance(problem_of("GET /v1/tasks", 404, b""), NotFound)
    assert problem_of("GET /", 599, b"[1]").title == "Error"


def test_every_error_is_a_client_error_and_a_tracker_error() -> None:
    made = [
        problem_of("GET /", 404, b""),
        ConnectionFailed("GET / to http://127.0.0.1:1: refused"),
        UnexpectedResponse("GET /: not JSON"),
        WaitTimeout("video_1", 2.5),
    ]
    for error in made:
        assert isinstance(error, ClientError) and isinstance(error, TrackerError)
    timeout = made[-1]
    assert isinstance(timeout, TimeoutError) and str(timeout) == (
        "task 'video_1' did not finish within 2.5 s"
    )


def tree(text: str) -> list[tuple[int, str, str]]:
    """The exception tree drawn in ``text``: each class's depth, name and description."""
    start = re.search(r"^ *ClientError  ", text, re.MULTILINE)
    assert start is not None, "no tree drawn"
    lines = text[start.start() :].splitlines()
    drawn = []
    for line in lines:
        match = re.fullmatch(r"\s*((?:[│ ]   )*)(?:[├└]── )?(\w+)\s+(.*)", line)
        if match is None or (drawn and not re.search(r"[├└]── ", line)):
            break
        drawn.append((len(match[1]) // 4 + (1 if drawn else 0), match[2], match[3]))
    return drawn


def test_the_exception_tree_is_drawn_the_same_in_the_docstring_and_the_docs() -> None:
    """Both drawings name every exception exported, each under its base class."""
    drawn = tree(tracker.client.__doc__ or "")
    assert drawn == tree((DOCS / "client.md").read_text())
    exported = {
        name
        for name in tracker.client.__all__
        if isinstance(getattr(tracker.client, name), type)
        and issubclass(getattr(tracker.client, name), BaseException)
    }
    assert {name for _, name, _ in drawn} == exported
    parents: list[str] = []
    for depth, name, _ in drawn:
        parents[depth:] = [name]
        if depth:
            assert getattr(tracker.client, name).__bases__[0] is getattr(
                tracker.client, parents[depth - 1]
            ), name


def test_the_public_names_are_the_documented_ones() -> None:
    """`from tracker.client import …` offers exactly these names (docs/client.md)."""
    assert sorted(tracker.client.__all__) == [
        "AddResult",
        "AsyncClient",
        "BulkResult",
        "Client",
        "ClientError",
        "Conflict",
        "ConnectionFailed",
        "Download",
        "Event",
        "FieldError",
        "Filter",
        "FinishReason",
        "FinishedEvent",
        "InvalidRequest",
        "NotFound",
        "Notification",
        "ProblemError",
        "RefusedTask",
        "Removal",
        "ResetEvent",
        "ServerError",
        "Snapshot",
        "SnapshotEvent",
        "Task",
        "TaskDetail",
        "Unauthorized",
        "UnexpectedResponse",
        "WaitTimeout",
    ]
    docs = (DOCS / "client.md").read_text()
    for name in tracker.client.__all__:
        assert getattr(tracker.client, name) is not None
        assert re.search(rf"\b{name}\b", docs), f"{name} is not in docs/client.md"


def names(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def test_the_records_read_every_field_the_server_gives() -> None:
    """The client's records and the server's schemas name the same fields, so a field added
    to one and not the other is caught here (the client passes unknown ones over)."""
    pairs = [
        (tracker.client.Task, schemas.TaskOut),
        (tracker.client.TaskDetail, schemas.TaskDetail),
        (tracker.client.Snapshot, schemas.SnapshotOut),
        (tracker.client.Download, schemas.DownloadOut),
        (tracker.client.Notification, schemas.NotificationOut),
        (tracker.client.Removal, schemas.Removed),
        (tracker.client.AddResult, schemas.Registered),
        (tracker.client.BulkResult, schemas.BulkOut),
    ]
    for record, schema in pairs:
        assert names(record) == set(schema.model_fields), record.__name__
    item = core_item()
    snapshot_data, finished_data = [
        json.loads(line.removeprefix("data: "))
        for line in server.encode(item).decode().splitlines()
        if line.startswith("data: ")
    ]
    assert names(tracker.client.SnapshotEvent) - {"last_event_id"} == set(snapshot_data)
    assert names(tracker.client.FinishedEvent) - {"last_event_id"} == set(finished_data)
    reset = server.reset(item.position, item.position).decode()
    reset_data = json.loads(reset.split("data: ", 1)[1])
    assert names(tracker.client.ResetEvent) - {"last_event_id"} == set(reset_data)


def core_item() -> FeedItem:
    now = datetime.now(UTC)
    return FeedItem(1, 2, "v", now, 200, "completed", 100, None, True, None, None, "completed", now)


def test_the_finish_reasons_and_the_cap_per_call_are_the_servers() -> None:
    assert [r.value for r in tracker.client.FinishReason] == [r.value for r in core.FinishReason]
    assert MAX_IDS_PER_CALL == schemas.MAX_TASKS_PER_CALL


def test_the_filter_and_the_export_are_the_servers() -> None:
    """Filter has the criteria of GET /v1/tasks, the bulk filter's first; an exported row
    has every field of the record it is read into; the tables, formats and media types are
    the server's."""
    criteria = names(tracker.client.Filter)
    assert criteria == set(inspect.signature(queries.task_filter).parameters)
    bulk = list(schemas.BulkFilter.model_fields)
    assert [field.name for field in dataclasses.fields(tracker.client.Filter)][:5] == bulk
    assert names(tracker.client.Task) <= names(core.Task)
    assert names(tracker.client.Snapshot) == names(core.Snapshot)
    assert typing.get_args(ExportTable) == core_exports.EXPORT_TABLES
    assert typing.get_args(ExportFormat) == core_exports.EXPORT_FORMATS
    assert MEDIA_TYPES == core_exports.MEDIA_TYPES
