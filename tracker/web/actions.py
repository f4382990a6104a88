"""``/v1`` acting on tasks (docs/http-api.md, Actions): poll one now, reopen one, and remove,
poll now or reopen many at once, chosen by IDs or by the filter ``GET /v1/tasks`` takes. The
rule of which task an action takes is tracker/core/actions.py; a refusal is a 409 naming why."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from tracker.core.actions import Action, OneByOne
from tracker.core.models import TaskFilter
from tracker.web import api, problems
from tracker.web.api import ServiceOf, TaskIdPath, json_body
from tracker.web.auth import caller
from tracker.web.schemas import BulkByFilter, BulkIds, BulkIn, BulkOut, TaskOut
from tracker.web.service import Service

router = APIRouter(prefix="/v1", dependencies=[Depends(caller)], responses=api.router.responses)


def _acted(service: Service, action: OneByOne, task_id: str) -> TaskOut:
    service.act(action, [task_id])
    task = service.database.reads.task(task_id)
    assert task is not None  # tasks are never deleted
    return TaskOut.of(task)


@router.post(
    "/tasks/{task_id}/poll",
    status_code=202,
    response_model=TaskOut,
    summary="Poll a task now",
    responses=problems.responses(404, 409),
)
def poll_now(task_id: TaskIdPath, service: ServiceOf) -> TaskOut:
    """Makes an unfinished task due at once: a running daemon polls it within a second (unless
    its provider's API is paused). A finished task is refused (409, naming how it finished):
    reopen it first."""
    return _acted(service, Action.POLL, task_id)


@router.post(
    "/tasks/{task_id}/reopen",
    response_model=TaskOut,
    summary="Watch an ended task again",
    responses=problems.responses(404, 409),
)
def reopen(task_id: TaskIdPath, service: ServiceOf) -> TaskOut:
    """Watches a task that ended as failed, not found, timed out or removed again: unfinished,
    due at once, give-up-after counted from now; its history is kept. A completed task or one
    still watched is refused (409, naming why) and left as it is."""
    return _acted(service, Action.REOPEN, task_id)


def _selection(body: BulkIds | BulkByFilter) -> list[str] | TaskFilter:
    if isinstance(body, BulkIds):
        return body.ids
    which = body.filter
    return TaskFilter(which.status, which.finished, which.label, which.provider, which.prefix)


def _bulk(action: Action, body: BulkIds | BulkByFilter, service: Service) -> BulkOut:
    count = service.bulk(action, _selection(body))
    return BulkOut(matched=count.matched, changed=count.changed)


BULK = {
    "response_model": BulkOut,
    "dependencies": [Depends(json_body)],
    "responses": problems.responses(400, 413, 415, 422),
}


@router.post("/bulk/remove", summary="Stop watching many tasks", **BULK)  # type: ignore[arg-type]
def bulk_remove(body: BulkIn, service: ServiceOf) -> BulkOut:
    """Finishes the selected unfinished tasks as ``removed``, each owing its notifications as
    a single removal does; finished ones are matched, not changed."""
    return _bulk(Action.REMOVE, body, service)


@router.post("/bulk/poll", summary="Poll many tasks now", **BULK)  # type: ignore[arg-type]
def bulk_poll(body: BulkIn, service: ServiceOf) -> BulkOut:
    """Makes the selected unfinished tasks due at once; finished ones are matched, not
    changed."""
    return _bulk(Action.POLL, body, service)


@router.post("/bulk/reopen", summary="Watch many ended tasks again", **BULK)  # type: ignore[arg-type]
def bulk_reopen(body: BulkIn, service: ServiceOf) -> BulkOut:
    """Reopens the selected tasks that ended as failed, not found, timed out or removed;
    completed and unfinished ones are matched, not changed."""
    return _bulk(Action.REOPEN, body, service)
