"""The dashboard's pages (docs/dashboard.md): the overview of every task (``/``), one task
(``/tasks/{id}``), registering tasks (``/register``), and the fragments their script fetches
to stay live (the counts, a task's moving parts). Server-rendered from the same store reads
the API uses; the scripts in ``static/dashboard`` only move what changes.

Handlers that read the database are plain functions: FastAPI runs them on its thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from tracker.core.actions import Action, refusal
from tracker.core.ids import DEFAULT_PROVIDER, check_task_id
from tracker.core.models import FinishReason, NewTask, Position, Task, TaskFilter, TaskOrder
from tracker.errors import DatabaseError, InvalidTaskIDError, UsageError
from tracker.settings.providers import declared_provider
from tracker.store.engine import reported_errors
from tracker.web import cursors
from tracker.web.filters import PAGE_SIZES, Filters
from tracker.web.login import PageError, Seen
from tracker.web.problems import ApiError
from tracker.web.schemas import MAX_TASKS_PER_CALL
from tracker.web.service import Service, service_of
from tracker.web.summary import STATES, Counts, Summary
from tracker.web.templating import render, task_url
from tracker.web.views import chart, label_width, timeline, tone

router = APIRouter(include_in_schema=False)
SNAPSHOTS_PER_PAGE = 50
LABEL_LENGTH = 1000
SHOWN_RESULTS = 200  # registered IDs listed back, of each kind
# The counts a page waits for before it is sent without them (its script fills them in).
COUNTS_WAIT_SECONDS = 0.05
# A state the counts say is empty is not looked for when counting took this long: the table
# is big, and finding nothing would read all of it.
SLOW_COUNTS_SECONDS = 0.1
# Tasks registered after a page loaded are counted up to this many, and then "more than".
NEW_TASKS_COUNTED = 100
# The tasks "select all matching" says it chooses are counted up to this many, and then "more
# than": a count of a filter is bounded work on the overview, however big the table.
MATCHING_COUNTED_UP_TO = 10_000
TaskId = Annotated[str, Path()]


@contextmanager
def reading() -> Iterator[None]:
    """The database's failures as a page that says so and tries again."""
    try:
        with reported_errors():
            yield
    except DatabaseError:
        raise PageError(
            503,
            "The database cannot be reached",
            "The dashboard could not read the database. This page tries again every 5 seconds.",
            retry=True,
        ) from None


def summary_of(request: Request) -> Summary:
    summary: Summary = request.app.state.summary
    return summary


@router.get("/")
def overview(request: Request, seen: Seen, cursor: str | None = None) -> Response:
    service = service_of(request)
    filters = Filters.of(request.query_params)
    counts = summary_of(request).counts(wait=COUNTS_WAIT_SECONDS)
    after = _position(cursor, filters.task_order)
    # The page's own newest task is the newest of all on the first page of every task, newest
    # first: nothing came in between.
    own_newest = after is None and filters.newest_first and not filters.narrowed
    with reading():
        # What is registered after the newest task of all is new to the page. A filtered or
        # sorted page's first task need not be that one: it is read first, before the page.
        newest = _newest(service) if after is None and not own_newest else None
        if _known_empty(filters, counts):
            page = []
        else:
            page = service.database.reads.page(
                filters.task_filter, filters.limit + 1, after, filters.task_order
            )
        more = len(page) > filters.limit
        page = page[: filters.limit]
        failed = [task.task_id for task in page if task.finish_reason == FinishReason.FAILED]
        reasons = service.database.timelines.final_errors(failed) if failed else {}
        matching = _matching(
            service, filters, counts, len(page) if after is None and not more else None
        )
    watched = [task.task_id for task in page if not task.finished]
    if own_newest:
        newest = page[0] if page else None
    next_cursor = cursors.after_task(page[-1], filters.task_order) if more else None
    context = {
        "viewer": seen,
        "now": service.clock.now(),
        "filters": filters,
        # What the page's script asks the counts about: how many tasks came after the newest
        # shown when it loaded ("" for none), on the first page only.
        "announce_after": None if after is not None else _since(newest),
        "newer": None,
        "counts": counts,
        "counts_failed": summary_of(request).failed,
        "tasks": page,
        "providers": _providers(service, counts, filters, page),
        "label_width": label_width(task.label for task in page),
        "reasons": reasons,
        "tone": tone,
        "first_page": after is None,
        "next_query": filters.query(cursor=next_cursor) if next_cursor else None,
        "events": "/v1/events?" + urlencode([("task_id", i) for i in watched]) if watched else "",
        "base_url": str(request.base_url).rstrip("/"),
        "states": STATES,
        "matching": matching,
        "page_sizes": PAGE_SIZES,
    }
    return render(request, "overview.html", context)


def _matching(service: Service, filters: Filters, counts: Counts | None, shown: int | None) -> str:
    """How many tasks the filter matches (what "select all matching" acts on): the tasks shown
    when they are all, the counts' when they tell, else counted up to MATCHING_COUNTED_UP_TO
    (the confirmation counts them all)."""
    if shown is not None:
        return f"{shown:,}"
    if counts is not None and not (
        filters.label or filters.prefix or filters.provider or filters.error
    ):
        every = counts.total if filters.state == "all" else counts.by_state[filters.state]
        return f"{every:,}"
    bound = MATCHING_COUNTED_UP_TO + 1
    found = service.database.reads.count(filters.task_filter, up_to=bound)
    return f"more than {MATCHING_COUNTED_UP_TO:,}" if found == bound else f"{found:,}"


def _providers(
    service: Service, counts: Counts | None, filters: Filters, page: list[Task]
) -> list[str]:
    """The providers the overview offers to filter by, known without reading every task: the
    server's providers file, those with unfinished tasks, those on the page and the one
    chosen. With one alone, there is nothing to tell apart, and no column."""
    known = {provider.name for provider in service.settings.providers}
    if counts is not None:
        known |= set(counts.stats.unfinished_by_provider)
    known |= {task.provider for task in page}
    if filters.provider:
        known.add(filters.provider)
    return sorted(known) if len(known) > 1 else []


def _position(cursor: str | None, order: TaskOrder) -> Position | None:
    if not cursor:
        return None
    try:
        return cursors.position(cursor, order)
    except ApiError:
        raise PageError(
            400, "This page link is stale", "Start again from the first page."
        ) from None


def _newest(service: Service) -> Task | None:
    newest = service.database.reads.page(TaskFilter(), 1)
    return newest[0] if newest else None


def _since(task: Task | None) -> str:
    return "" if task is None else cursors.after_task(task)


def _newer(request: Request, since: str) -> int | None:
    """How many tasks were registered after the one ``since`` names (every task, for ""), up
    to one more than ``NEW_TASKS_COUNTED``: a read of the newest few, however big the table.
    None when that cannot be told (a cursor not ours, the database away)."""
    try:
        position = cursors.position(since) if since else None
        with reported_errors():
            newest = service_of(request).database.reads.page(TaskFilter(), NEW_TASKS_COUNTED + 1)
    except (ApiError, DatabaseError):
        return None
    newer = 0
    for task in newest:
        # Newest first, in the database's order, down to the task named or an older one.
        if position is not None and (
            task.task_id == position.task_id or task.registered_at < position.registered_at
        ):
            break
        newer += 1
    return newer


def _known_empty(filters: Filters, counts: Counts | None) -> bool:
    if counts is None or filters.state == "all" or counts.read_seconds < SLOW_COUNTS_SECONDS:
        return False
    return counts.by_state[filters.state] == 0


@router.get("/summary")
def summary(request: Request, seen: Seen, since: str | None = None) -> Response:
    """The counts, for the overview's script to swap in at each beat; with ``since`` (what the
    page names as its newest task when it loaded), how many tasks are new since."""
    summary = summary_of(request)
    context = {
        "counts": summary.counts(wait=5.0),
        "counts_failed": summary.failed,
        "newer": None if since is None else _newer(request, since),
        "new_tasks_counted": NEW_TASKS_COUNTED,
        "filters": Filters.of(request.query_params),
        "states": STATES,
    }
    return render(request, "counts.html", context)


@router.get("/tasks/{task_id}")
def task_page(
    request: Request,
    task_id: TaskId,
    seen: Seen,
    after: str | None = None,
    removed: bool = False,
    polled: bool = False,
    reopened: bool = False,
) -> Response:
    context = _task_context(request, task_id, after)
    context.update(viewer=seen, removed=removed, polled=polled, reopened=reopened)
    return render(request, "task.html", context)


@router.get("/tasks/{task_id}/live")
def task_live(request: Request, task_id: TaskId, seen: Seen, after: str | None = None) -> Response:
    """The parts of a task's page that move, for its script to swap in."""
    context = _task_context(request, task_id, after)
    return render(request, "task_live.html", {**context, "viewer": seen})


def _task_context(request: Request, task_id: str, after: str | None) -> dict[str, Any]:
    service = service_of(request)
    database = service.database
    try:
        after_id = cursors.snapshot_id(after) if after else None
    except ApiError:
        raise PageError(400, "This page link is stale", "Open the task again.") from None
    with reading():
        task = database.reads.task(task_id)
        if task is None:
            raise PageError(404, "No such task", f"No task {task_id!r} is registered.")
        points = database.timelines.points(task_id)
        snapshots = database.reads.snapshots_page(task_id, SNAPSHOTS_PER_PAGE + 1, after_id)
        last = list(database.reads.stream_history(task_id, last=1))
        downloads = database.follow_ups.downloads(task_id)
        notifications = database.follow_ups.events(task_id)
    now = service.clock.now()
    runs = timeline(points, task, now)
    more = len(snapshots) > SNAPSHOTS_PER_PAGE
    snapshots = snapshots[:SNAPSHOTS_PER_PAGE]
    return {
        "task": task,
        "now": now,
        "runs": runs,
        "chart": chart(points, runs, task, now),
        "failed_polls": sum(run.errors for run in runs),
        "snapshots": snapshots,
        "after": after or "",
        "next_after": cursors.after_snapshot(snapshots[-1].id) if more else None,
        "last_answer": last[0] if last else None,
        "downloads": downloads,
        "notifications": notifications,
        "tone": tone,
        "url": task_url(task_id),
        "reopenable": refusal(Action.REOPEN, task.finished, task.finish_reason) is None,
        "events": "" if task.finished else "/v1/events?" + urlencode({"task_id": task_id}),
    }


@router.post("/tasks/{task_id}/remove")
def remove_task(request: Request, task_id: TaskId, seen: Seen) -> Response:
    service = service_of(request)
    with reading():
        if service.database.reads.task(task_id) is None:
            raise PageError(404, "No such task", f"No task {task_id!r} is registered.")
        service.remove([task_id])
    return RedirectResponse(f"{task_url(task_id)}?removed=1", status_code=303)


@router.get("/register")
def register_form(request: Request, seen: Seen) -> Response:
    return render(request, "register.html", _form(request, seen))


def _form(request: Request, seen: Any, **more: Any) -> dict[str, Any]:
    """The form's context; with a providers file, the providers to choose from (``default``
    first chosen when it declares one)."""
    declared = sorted(known.name for known in service_of(request).settings.providers)
    context = {
        "viewer": seen,
        "ids": "",
        "label": "",
        "provider": DEFAULT_PROVIDER if DEFAULT_PROVIDER in declared else "",
        "providers": declared,
        "errors": [],
        "result": None,
    }
    context.update(more)
    context["shown"] = SHOWN_RESULTS
    return context


@dataclass(frozen=True)
class LineError:
    line: int | None  # None: the form as a whole
    message: str


@router.post("/register")
def register(
    request: Request,
    seen: Seen,
    ids: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
    provider: Annotated[str, Form()] = "",
) -> Response:
    """All or nothing, as the API: one invalid line registers nothing and is named."""
    errors, task_ids = _read_ids(ids)
    label = label.strip()
    if len(label) > LABEL_LENGTH:
        errors.append(LineError(None, f"The label is over {LABEL_LENGTH:,} characters."))
    service = service_of(request)
    chosen = DEFAULT_PROVIDER
    try:
        chosen = declared_provider(provider or None, service.settings.providers)
    except UsageError as exc:  # a name that cannot be one, or one the file does not declare
        errors.append(LineError(None, str(exc)))
    if errors:
        context = _form(request, seen, ids=ids, label=label, provider=provider, errors=errors)
        return render(request, "register.html", context, status=422)
    new = [NewTask(task_id, label or None, provider=chosen) for task_id in task_ids]
    with reading():
        result = service.register(new)
    context = _form(request, seen, label=label, provider=chosen, result=result)
    return render(request, "register.html", context)


def _read_ids(text: str) -> tuple[list[LineError], list[str]]:
    """The IDs of the textarea, one a line (blank lines and spaces around an ID are left
    out), each invalid one named with its line."""
    errors: list[LineError] = []
    task_ids: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        candidate = line.strip()
        if not candidate:
            continue
        try:
            task_ids[check_task_id(candidate)] = None
        except InvalidTaskIDError as exc:
            errors.append(LineError(number, str(exc)))
    if not task_ids and not errors:
        errors.append(LineError(None, "Give at least one task ID, one a line."))
    if len(task_ids) > MAX_TASKS_PER_CALL:
        errors.append(LineError(None, f"At most {MAX_TASKS_PER_CALL:,} IDs at once."))
    return errors, list(task_ids)


@router.get("/daemons")
def daemons_page(request: Request, seen: Seen) -> Response:
    """The daemons at work: where they run, their providers, what they hold, their pace."""
    service = service_of(request)
    now = service.clock.now()
    with reading():
        rows = service.database.daemons.rows()
    states = {"running": "running", "lost": "failed", "stopped": "ended"}
    daemons = [(row, row.state(now), states[row.state(now)]) for row in rows]
    return render(request, "daemons.html", {"daemons": daemons, "now": now, "viewer": seen})
