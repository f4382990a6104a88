"""The API's actions on tasks as calls, and their answers read (docs/http-api.md, Actions):
poll one now, reopen one, and remove, poll now or reopen many, by IDs or by a ``Filter``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from tracker.client._calls import Call, Filter, batches, task_path
from tracker.client._models import BulkResult, Task, read

BulkAction = Literal["remove", "poll", "reopen"]


def poll_task(task_id: str) -> Call:
    return Call("POST", task_path(task_id) + "/poll")


def reopen_task(task_id: str) -> Call:
    return Call("POST", task_path(task_id) + "/reopen")


def read_acted(value: object) -> Task:
    """The task as the action left it."""
    return read(Task, value)


class Bulk:
    """A bulk action on ``which``: the tasks a ``Filter`` matches (however many, in one call),
    or IDs (once each, in calls of up to 10,000; none, no call); the answers' counts summed."""

    def __init__(self, action: BulkAction, which: str | Iterable[str] | Filter) -> None:
        path = f"/v1/bulk/{action}"
        if isinstance(which, Filter):
            self.calls = [Call("POST", path, body={"filter": which.body()})]
        else:
            self.calls = [
                Call("POST", path, body={"ids": batch}, index_base=start)
                for start, batch in batches(which)
            ]
        self._matched = self._changed = 0

    def take(self, value: object) -> None:
        counts = read(BulkResult, value)
        self._matched += counts.matched
        self._changed += counts.changed

    @property
    def result(self) -> BulkResult:
        return BulkResult(self._matched, self._changed)
