"""What the lists of tasks take as query parameters, read once for every route that lists
them (``GET /v1/tasks``, ``GET /v1/export``): which tasks (``task_filter``) and in which order
(``task_order``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query

from tracker.core.models import FinishReason, SortKey, TaskFilter, TaskOrder


def task_filter(
    status: Annotated[str | None, Query(description="The last status, any case")] = None,
    finished: Annotated[bool | None, Query()] = None,
    finish_reason: Annotated[FinishReason | None, Query(description="How it finished")] = None,
    label: Annotated[str | None, Query()] = None,
    provider: Annotated[str | None, Query()] = None,
    prefix: Annotated[str | None, Query(description="Task IDs starting with this")] = None,
    error: Annotated[
        str | None, Query(description="Text anywhere in the last error (`last_error`), any case")
    ] = None,
) -> TaskFilter:
    return TaskFilter(status, finished, label, provider, prefix, finish_reason, error or None)


def task_order(
    sort: Annotated[
        SortKey,
        Query(
            description="The column the tasks are sorted by; tasks of one value by "
            "`registered_at`, then `task_id`, in the same order; tasks without a value last"
        ),
    ] = SortKey.REGISTERED_AT,
    order: Annotated[Literal["asc", "desc"], Query(description="Ascending or descending")] = "desc",
) -> TaskOrder:
    return TaskOrder(sort, order == "desc")


TaskFilterOf = Annotated[TaskFilter, Depends(task_filter)]
TaskOrderOf = Annotated[TaskOrder, Depends(task_order)]
