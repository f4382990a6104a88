"""Task IDs: what a valid one looks like and how it becomes one URL path segment."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from tracker.errors import InvalidTaskIDError

MAX_LENGTH = 256
_FORBIDDEN = frozenset("/?#%\\")
# RFC 3986 pchar minus the percent sign: these need no escaping inside one path segment, and
# relays differ in whether they decode an escaped ":" (IDs like "sora-2:task_01H…").
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"


def check_task_id(task_id: str) -> str:
    """Return ``task_id`` unchanged if valid, else raise InvalidTaskIDError saying why."""
    if not task_id:
        raise InvalidTaskIDError("invalid task ID '': empty")
    if len(task_id) > MAX_LENGTH:
        raise InvalidTaskIDError(
            f"invalid task ID {task_id[:40]!r}…: longer than {MAX_LENGTH} characters"
        )
    for char in task_id:
        if not ("!" <= char <= "~"):
            what = "whitespace" if char.isspace() else f"the character {char!r}"
            raise InvalidTaskIDError(
                f"invalid task ID {task_id!r}: contains {what} "
                "(printable ASCII without spaces only)"
            )
        if char in _FORBIDDEN:
            raise InvalidTaskIDError(f"invalid task ID {task_id!r}: contains {char!r}")
    if task_id in (".", ".."):
        raise InvalidTaskIDError(f"invalid task ID {task_id!r}: not a usable path segment")
    return task_id


def check_task_ids(task_ids: Iterable[str]) -> list[str]:
    """All IDs checked, duplicates dropped, order kept; the first invalid one raises."""
    return list(dict.fromkeys(check_task_id(task_id) for task_id in task_ids))


def path_segment(task_id: str) -> str:
    """The ID escaped as exactly one URL path segment."""
    return quote(check_task_id(task_id), safe=_SEGMENT_SAFE)
