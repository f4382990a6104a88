"""Opaque cursors for paging: what a page's last item was, for the next page to start after.
A cursor names a place in an order, not a filter: the next request repeats the same filters
(and the same order, which the cursor holds it to)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from tracker.core.models import NEWEST_FIRST, Position, SortKey, Task, TaskOrder
from tracker.web.problems import ApiError, FieldError

_BAD = "The cursor is not one this server gave: start again without it."
_OTHER_ORDER = "The cursor leads on in another order: repeat its sort and order, or start again."
SORT_KEYS = frozenset(key.value for key in SortKey)


def _encode(value: object) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad() from None


def _bad(detail: str = _BAD) -> ApiError:
    return ApiError(detail, errors=[FieldError(detail=detail, parameter="cursor")])


def after_task(task: Task, order: TaskOrder = NEWEST_FIRST) -> str:
    """A cursor after ``task`` in ``order``: it names the order too, so that it leads on in
    no other."""
    if order == NEWEST_FIRST:
        return _encode(["t", task.registered_at.isoformat(), task.task_id])
    value = getattr(task, order.key.value) if order.key is not SortKey.REGISTERED_AT else None
    if isinstance(value, datetime):
        value = value.isoformat()
    way = "desc" if order.descending else "asc"
    return _encode(["o", order.key.value, way, value, task.registered_at.isoformat(), task.task_id])


def position(cursor: str, order: TaskOrder = NEWEST_FIRST) -> Position:
    """Where the cursor's page ended; ApiError if it is not one of ours, or of another
    order than ``order``."""
    value = _decode(cursor)
    if isinstance(value, list) and len(value) == 3 and value[0] == "t":
        named, place = NEWEST_FIRST, [None, *value[1:]]
    elif isinstance(value, list) and len(value) == 6 and value[0] == "o":
        named, place = _order(value[1], value[2]), value[3:]
    else:
        raise _bad()
    if named != order:
        raise _bad(_OTHER_ORDER)
    key_value, registered_at, task_id = place
    if not isinstance(task_id, str):
        raise _bad()
    return Position(_moment(registered_at), task_id, _key_value(order.key, key_value))


def _order(key: object, way: object) -> TaskOrder:
    if key not in SORT_KEYS or way not in ("asc", "desc"):
        raise _bad()
    return TaskOrder(SortKey(key), way == "desc")


def _moment(text: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise _bad() from None
    if moment.tzinfo is None:
        raise _bad()
    return moment


def _key_value(key: SortKey, value: object) -> object:
    """The value of the key a cursor names, as the column holds it."""
    if value is None or key is SortKey.REGISTERED_AT:
        return None
    if key is SortKey.LAST_POLLED_AT:
        return _moment(value)
    if key is SortKey.PROGRESS and isinstance(value, int) and not isinstance(value, bool):
        return value
    if key is SortKey.STATUS and isinstance(value, str):
        return value
    raise _bad()


def after_snapshot(snapshot_id: int) -> str:
    return _encode(["s", snapshot_id])


def snapshot_id(cursor: str) -> int:
    value = _decode(cursor)
    if not (isinstance(value, list) and len(value) == 2 and value[0] == "s"):
        raise _bad()
    if not isinstance(value[1], int) or isinstance(value[1], bool) or value[1] < 0:
        raise _bad()
    return value[1]
