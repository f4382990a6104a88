"""What people may do to tasks besides registering them (docs/http-api.md, Actions): remove
them, make them due now, reopen them; which tasks each action takes, and how many a bulk action
matched and changed. The API, the dashboard, the command line and the Python API all ask this
rule."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from tracker.core.models import FinishReason
from tracker.errors import Refusal


class Action(enum.StrEnum):
    REMOVE = "remove"  # finish as removed; a finished task is left as it is
    POLL = "poll"  # make an unfinished task due at once
    REOPEN = "reopen"  # watch an ended task again


#: The actions taken one task at a time, all or nothing (a removal has its own call, which
#: takes finished tasks as they are and says which were).
OneByOne = Literal[Action.POLL, Action.REOPEN]

#: The ends a task can be watched again after: a completed video has nothing more to show.
REOPENABLE = frozenset(
    {FinishReason.FAILED, FinishReason.NOT_FOUND, FinishReason.TIMED_OUT, FinishReason.REMOVED}
)


def refusal(action: Action, finished: bool, finish_reason: str | None) -> Refusal | None:
    """Why ``action`` leaves a task in this state as it is (None: it changes it). Removing a
    finished task is no refusal: it is removed already, as far as its watching goes."""
    if action is Action.POLL:
        return "finished" if finished else None
    if action is Action.REOPEN:
        if not finished:
            return "unfinished"
        return None if finish_reason in REOPENABLE else "completed"
    return None


@dataclass(frozen=True)
class BulkCount:
    """What a bulk action did: the tasks its selection matched, and those it changed."""

    matched: int = 0
    changed: int = 0

    def __add__(self, other: BulkCount) -> BulkCount:
        return BulkCount(self.matched + other.matched, self.changed + other.changed)
