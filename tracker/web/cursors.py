"""Opaque cursors for paging: what a page's last item was, for the next page to start after.
A cursor names a place, not a filter: the next request repeats the same filters."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from tracker.core.models import Position, Task
from tracker.web.problems import ApiError, FieldError

_BAD = "The cursor is not one this server gave: start again without it."


def _encode(value: object) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad() from None


def _bad() -> ApiError:
    return ApiError(_BAD, errors=[FieldError(detail=_BAD, parameter="cursor")])


def after_task(task: Task) -> str:
    return _encode(["t", task.registered_at.isoformat(), task.task_id])


def position(cursor: str) -> Position:
    value = _decode(cursor)
    if not (isinstance(value, list) and len(value) == 3 and value[0] == "t"):
        raise _bad()
    try:
        registered_at = datetime.fromisoformat(str(value[1]))
    except ValueError:
        raise _bad() from None
    if registered_at.tzinfo is None or not isinstance(value[2], str):
        raise _bad()
    return Position(registered_at, value[2])


def after_snapshot(snapshot_id: int) -> str:
    return _encode(["s", snapshot_id])


def snapshot_id(cursor: str) -> int:
    value = _decode(cursor)
    if not (isinstance(value, list) and len(value) == 2 and value[0] == "s"):
        raise _bad()
    if not isinstance(value[1], int) or isinstance(value[1], bool) or value[1] < 0:
        raise _bad()
    return value[1]
