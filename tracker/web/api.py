"""``/v1``: registering tasks, reading them and their history, removing them, the summary and
the event stream (docs/http-api.md). Handlers that read or write the database are plain
functions: FastAPI runs them on its thread pool, never on the event loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from tracker.core.feed import FeedPosition
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import NewTask
from tracker.errors import UnknownProviderError
from tracker.settings.providers import Provider, declared_provider
from tracker.web import cursors, problems
from tracker.web.auth import caller
from tracker.web.events import MAX_INTERVAL_SECONDS, Feed, interest_of
from tracker.web.problems import ApiError, FieldError, NotFound, pointer
from tracker.web.queries import TaskFilterOf, TaskOrderOf
from tracker.web.schemas import (
    DaemonList,
    DaemonOut,
    DownloadOut,
    NotificationOut,
    Registered,
    RegisterIn,
    RegisterTasks,
    Removed,
    SnapshotOut,
    SnapshotPage,
    StatsOut,
    TaskDetail,
    TaskOut,
    TaskPage,
)
from tracker.web.service import Service, service_of

router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(caller)],
    responses=problems.responses(401, 503),
)
ServiceOf = Annotated[Service, Depends(service_of)]
TaskIdPath = Annotated[str, Path(description="The task ID, one URL path segment")]
EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string", "enum": ["snapshot", "finished", "reset"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}


JSON_MEDIA_TYPE = "application/json"


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type says JSON: application/json, or a type with the +json suffix."""
    media = (content_type or "").partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def json_body(request: Request) -> None:
    """A body read as JSON must say it is JSON: a form or text would otherwise be read as
    something else and refused with a 422 that names no field."""
    if not is_json(request.headers.get("content-type")):
        detail = f"send the body as JSON, with Content-Type: {JSON_MEDIA_TYPE}"
        raise ApiError(
            f"The body must be JSON (Content-Type: {JSON_MEDIA_TYPE}).",
            errors=[FieldError(detail=detail, parameter="Content-Type")],
            status=415,
        )


@router.post(
    "/tasks",
    status_code=201,
    response_model=Registered,
    summary="Register tasks",
    dependencies=[Depends(json_body)],
    responses=problems.responses(400, 413, 415, 422),
)
def register(body: RegisterIn, service: ServiceOf) -> Registered:
    """Registers tasks to watch, due at once. Idempotent: tasks already registered are left as
    they are and listed under ``existing``. All or nothing: one invalid ID, metadata object or
    provider refuses the whole call, naming each offending field, and registers nothing. Given
    the providers file (``--config``), the server takes only the providers it declares."""
    result = service.register(_new_tasks(body, service.settings.providers))
    return Registered(added=result.added, existing=result.existing)


def _new_tasks(body: RegisterIn, declared: tuple[Provider, ...]) -> list[NewTask]:
    """The tasks a valid body asks for, each ID once; ApiError naming each provider that the
    ``declared`` ones (a providers file's; none: any name) leave out."""
    errors: list[FieldError] = []
    tasks: dict[str, NewTask] = {}
    if isinstance(body, RegisterTasks):
        for index, item in enumerate(body.tasks):
            where = pointer("tasks", index, "provider")
            provider = _provider(item.provider, declared, where, errors)
            tasks.setdefault(item.id, NewTask(item.id, item.label, item.metadata, provider))
    else:
        provider = _provider(body.provider, declared, pointer("provider"), errors)
        for task_id in body.ids:
            tasks.setdefault(task_id, NewTask(task_id, body.label, body.metadata, provider))
    if errors:
        raise ApiError(problems.INVALID, errors=errors, status=422)
    return list(tasks.values())


def _provider(
    given: str | None, declared: tuple[Provider, ...], where: str, errors: list[FieldError]
) -> str:
    try:
        return declared_provider(given, declared)
    except UnknownProviderError as exc:
        errors.append(FieldError(detail=str(exc), pointer=where))
        return DEFAULT_PROVIDER


@router.get(
    "/tasks",
    response_model=TaskPage,
    summary="List tasks, newest first or sorted",
    responses=problems.responses(400, 422),
)
def list_tasks(
    service: ServiceOf,
    which: TaskFilterOf,
    order: TaskOrderOf,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the page before, with the same sort")
    ] = None,
) -> TaskPage:
    """One page of tasks, newest first unless ``sort`` and ``order`` say otherwise;
    ``next_cursor`` leads on to the next, in the same order. Newest first, pages stay right
    while tasks are registered meanwhile (they come before the first page); sorted by a
    column polls change, a task that moves meanwhile may be seen twice or not at all."""
    after = cursors.position(cursor, order) if cursor else None
    page = service.database.reads.page(which, limit + 1, after, order)
    more = len(page) > limit
    page = page[:limit]
    return TaskPage(
        tasks=[TaskOut.of(task) for task in page],
        next_cursor=cursors.after_task(page[-1], order) if more else None,
    )


@router.get(
    "/tasks/{task_id}",
    response_model=TaskDetail,
    summary="One task",
    responses=problems.responses(404),
)
def get_task(task_id: TaskIdPath, service: ServiceOf) -> TaskDetail:
    """The task with its latest status, progress, counts, finish reason, label and metadata,
    its downloads and its notifications."""
    task = service.database.reads.task(task_id)
    if task is None:
        raise NotFound(f"No task {task_id!r} is registered.")
    follow_ups = service.database.follow_ups
    notifications = [
        NotificationOut(**{name: row[name] for name in NotificationOut.model_fields})
        for row in follow_ups.events(task_id)
    ]
    return TaskDetail(
        **TaskOut.of(task).model_dump(),
        downloads=[DownloadOut.of(download) for download in follow_ups.downloads(task_id)],
        notifications=notifications,
    )


@router.get(
    "/tasks/{task_id}/snapshots",
    response_model=SnapshotPage,
    summary="A task's history, oldest first",
    responses=problems.responses(400, 404, 422),
)
def snapshots(
    task_id: TaskIdPath,
    service: ServiceOf,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before")] = None,
) -> SnapshotPage:
    """What every poll of the task saw, oldest first, a page at a time."""
    reads = service.database.reads
    if reads.task(task_id) is None:
        raise NotFound(f"No task {task_id!r} is registered.")
    after = cursors.snapshot_id(cursor) if cursor else None
    page = reads.snapshots_page(task_id, limit + 1, after)
    more = len(page) > limit
    page = page[:limit]
    return SnapshotPage(
        snapshots=[SnapshotOut.of(snapshot) for snapshot in page],
        next_cursor=cursors.after_snapshot(page[-1].id) if more else None,
    )


@router.delete(
    "/tasks/{task_id}",
    response_model=Removed,
    summary="Stop watching a task",
    responses=problems.responses(404),
)
def remove(task_id: TaskIdPath, service: ServiceOf) -> Removed:
    """Finishes the task as ``removed``, as ``tracker remove`` does; its history is kept."""
    database = service.database
    if database.reads.task(task_id) is None:
        raise NotFound(f"No task {task_id!r} is registered.")
    result = service.remove([task_id])
    task = database.reads.task(task_id)
    assert task is not None
    return Removed(task=TaskOut.of(task), removed=bool(result.removed))


@router.get("/stats", response_model=StatsOut, summary="The summary of `tracker stats`")
def stats(service: ServiceOf) -> StatsOut:
    """Tasks by state, the backlog due now, the last minute's polls, downloads and
    notifications: what ``tracker stats --json`` prints."""
    return StatsOut.of(service.database.reads.stats(service.clock.now()))


@router.get("/daemons", response_model=DaemonList, summary="The daemons at work")
def daemons(service: ServiceOf) -> DaemonList:
    """Every daemon that refreshed its row in the last day, the most recently started first:
    where it runs, its providers, the tasks it holds, its polls of the last minute, and
    whether it runs, stopped, or was lost (not seen for three beats)."""
    now = service.clock.now()
    return DaemonList(daemons=[DaemonOut.of(row, now) for row in service.database.daemons.rows()])


@router.get(
    "/events",
    summary="Follow snapshots and finishes as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An event stream: `snapshot` per new snapshot, `finished` per "
            "finished task, `reset` when `Last-Event-ID` was never sent by this database; each "
            "event's `id` is its place in the feed, to resume after with `Last-Event-ID`",
            "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
        },
        **problems.responses(400, 422),
    },
)
async def events(
    request: Request,
    task_id: Annotated[list[str] | None, Query(description="Only these tasks (repeatable)")] = None,
    label: Annotated[str | None, Query(description="Only tasks with this label")] = None,
    interval: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_INTERVAL_SECONDS,
            description="Send at most once every this many seconds, what came meanwhile "
            "together (for clients that draw in frames); 0, the default: as soon as read",
        ),
    ] = 0,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume after this event's `id`: nothing missed, nothing twice"),
    ] = None,
) -> StreamingResponse:
    """Reads the database, so it sees every daemon's work; heartbeats every 15 s."""
    feed: Feed = request.app.state.feed
    resume = None
    if last_event_id is not None:
        resume = FeedPosition.parse(last_event_id)
        if resume is None:
            detail = "not an event ID of this stream: send the `id` of the last event received"
            raise ApiError(
                "Last-Event-ID is not a place in the event feed.",
                errors=[FieldError(detail=detail, parameter="Last-Event-ID")],
            )
    body = feed.stream(interest_of(task_id or (), label), resume, interval)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
