"""The dashboard's actions (docs/dashboard.md, Acting on tasks): a task's "Poll now" and
"Reopen" buttons, and the overview's actions on the tasks ticked, or on every task its filter
matches, each behind a page that asks to confirm. The same service calls as the API's
(tracker/web/actions.py), the same rule of which task an action takes; every form carries the
session's CSRF token (tracker/web/auth.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from tracker.core.actions import Action, OneByOne
from tracker.core.ids import check_task_id
from tracker.errors import InvalidTaskIDError, TaskStateError, UnknownTaskError
from tracker.web.filters import Filters
from tracker.web.login import PageError, Seen
from tracker.web.pages import reading
from tracker.web.schemas import MAX_TASKS_PER_CALL
from tracker.web.service import service_of
from tracker.web.templating import render, task_url

router = APIRouter(include_in_schema=False)
TaskId = Annotated[str, Path()]
# The IDs a confirmation lists by name; the rest are counted.
LISTED = 20
#: What each action's button and result say.
WORDS = {
    Action.REMOVE: (
        "Remove",
        "removed",
        "finished as removed and no longer polled; their "
        "history is kept, and each owes its notifications",
    ),
    Action.POLL: (
        "Poll now",
        "made due now",
        "polled at once by a running daemon; finished ones are left as they are",
    ),
    Action.REOPEN: (
        "Reopen",
        "reopened",
        "watched again if they ended as failed, not found, "
        "timed out or removed; completed and unfinished ones are left as they are",
    ),
}


def _act_on_one(request: Request, action: OneByOne, task_id: str, done: str) -> Response:
    service = service_of(request)
    try:
        with reading():
            service.act(action, [task_id])
    except UnknownTaskError:
        raise PageError(404, "No such task", f"No task {task_id!r} is registered.") from None
    except TaskStateError as exc:
        raise PageError(409, "Not done", str(exc)) from None
    return RedirectResponse(f"{task_url(task_id)}?{done}=1", status_code=303)


@router.post("/tasks/{task_id}/poll")
def poll_task(request: Request, task_id: TaskId, seen: Seen) -> Response:
    return _act_on_one(request, Action.POLL, task_id, "polled")


@router.post("/tasks/{task_id}/reopen")
def reopen_task(request: Request, task_id: TaskId, seen: Seen) -> Response:
    return _act_on_one(request, Action.REOPEN, task_id, "reopened")


async def _form_filters(request: Request) -> Filters:
    """The overview's filters the form carries (macros.html, filter_fields), read as the
    overview reads them from its query string: one list of them, in Filters."""
    form = await request.form()
    return Filters.of({name: value for name, value in form.items() if isinstance(value, str)})


@router.post("/bulk")
def bulk(
    request: Request,
    seen: Seen,
    filters: Annotated[Filters, Depends(_form_filters)],
    action: Annotated[str, Form()] = "",
    task_ids: Annotated[list[str] | None, Form(alias="id")] = None,
    matching: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    """The tasks ticked (``id``), or with ``matching`` every task the filter matches: first a
    page that says what would be done, then, confirmed, done a batch at a time."""
    try:
        chosen = Action(action)
    except ValueError:
        raise PageError(422, "No such action", "Choose remove, poll now or reopen.") from None
    ids = list(dict.fromkeys(task_ids or ()))
    if not matching and not ids:
        raise PageError(422, "No task chosen", "Tick the tasks to act on, or all matching.")
    if len(ids) > MAX_TASKS_PER_CALL:
        raise PageError(422, "Too many tasks", f"At most {MAX_TASKS_PER_CALL:,} ticked at once.")
    for task_id in ids:
        try:
            check_task_id(task_id)
        except InvalidTaskIDError as exc:
            raise PageError(422, "Not a task ID", str(exc)) from None
    service = service_of(request)
    selection = filters.task_filter if matching else ids
    button, done, meaning = WORDS[chosen]
    context = {
        "viewer": seen,
        "action": chosen,
        "button": button,
        "done": done,
        "meaning": meaning,
        "filters": filters,
        "matching": bool(matching),
        "ids": ids,
        "listed": LISTED,
        "back": "/" + filters.query(),
    }
    if not confirmed:
        with reading():
            count = service.database.reads.count(filters.task_filter) if matching else len(ids)
        return render(request, "bulk.html", {**context, "count": count, "result": None})
    with reading():
        result = service.bulk(chosen, selection)
    return render(request, "bulk.html", {**context, "count": result.matched, "result": result})
