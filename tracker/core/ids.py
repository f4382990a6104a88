"""Task IDs: what a valid one looks like, how it goes into a status URL, and when an
ID an answer names is the one polled; and what a provider's name may be."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

from tracker.errors import InvalidTaskIDError, UsageError

MAX_LENGTH = 256
_FORBIDDEN = frozenset("/?#%\\")
# The rule in one expression, for speed (a file of a million IDs is checked ID by ID); the
# checks of check_task_id only say which part of it an ID breaks.
_ALLOWED = "".join(
    chr(code) for code in range(ord("!"), ord("~") + 1) if chr(code) not in _FORBIDDEN
)
_VALID = re.compile(f"[{re.escape(_ALLOWED)}]{{1,{MAX_LENGTH}}}")
# RFC 3986 pchar minus the percent sign: these need no escaping inside one path segment, and
# relays differ in whether they decode an escaped ":" (IDs like "sora-2:task_01H…").
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
# In a query value "&", "=" and "+" mean something, so only the unreserved characters and ":"
# (allowed in a query by RFC 3986, and how relays write "sora-2:task_…") stay as they are.
_QUERY_SAFE = ":"
DEFAULT_STATUS_PATH = "/v1/videos/{id}"
# The provider of a task registered without one, and of every task when none are configured.
DEFAULT_PROVIDER = "default"
# A provider's name (docs/providers.md): safe in a URL, a file name, a log line and a label.
PROVIDER_NAME = "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_PROVIDER = re.compile(PROVIDER_NAME)
_PLACEHOLDER = "{id}"


def check_provider(name: str) -> str:
    """Return ``name`` unchanged if it may name a provider, else raise UsageError."""
    if _PROVIDER.fullmatch(name):
        return name
    raise UsageError(
        f"invalid provider {name[:80]!r}: letters, digits, '.', '_' and '-', 64 at most, "
        "starting with a letter or a digit"
    )


def check_task_id(task_id: str) -> str:
    """Return ``task_id`` unchanged if valid, else raise InvalidTaskIDError saying why."""
    if _VALID.fullmatch(task_id) and task_id not in (".", ".."):
        return task_id
    if not task_id:
        raise InvalidTaskIDError("invalid task ID '': empty")
    if len(task_id) > MAX_LENGTH:
        raise too_long(task_id)
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


def too_long(start: str) -> InvalidTaskIDError:
    """The error for an ID longer than MAX_LENGTH, of which ``start`` is the beginning."""
    return InvalidTaskIDError(
        f"invalid task ID {start[:40]!r}…: longer than {MAX_LENGTH} characters"
    )


def check_task_ids(task_ids: Iterable[str]) -> list[str]:
    """All IDs checked, duplicates dropped, order kept; the first invalid one raises."""
    return list(dict.fromkeys(check_task_id(task_id) for task_id in task_ids))


def path_segment(task_id: str) -> str:
    """The ID escaped as exactly one URL path segment."""
    return quote(check_task_id(task_id), safe=_SEGMENT_SAFE)


def query_value(task_id: str) -> str:
    """The ID escaped as one URL query value."""
    return quote(check_task_id(task_id), safe=_QUERY_SAFE)


class StatusPath:
    """Where a provider answers a task's status: a path template with one ``{id}``, such as
    ``/v1/videos/{id}`` or ``/v1/video/query?id={id}``. The ID is escaped as a path segment,
    or as a query value when ``{id}`` stands in the query."""

    def __init__(self, template: str = DEFAULT_STATUS_PATH) -> None:
        self.template = parse_status_path(template)
        self._prefix, _, self._suffix = template.partition(_PLACEHOLDER)
        self._escape = query_value if "?" in self._prefix else path_segment

    def __call__(self, task_id: str) -> str:
        """The path (and query) for ``task_id``; raises InvalidTaskIDError for an invalid ID."""
        return self._prefix + self._escape(task_id) + self._suffix


def parse_status_path(raw: str) -> str:
    """``raw`` unchanged if it is a usable status path template, else ValueError saying why."""
    if not raw.startswith("/") or raw.startswith("//"):
        raise ValueError("must be a path starting with a single / (no scheme or host)")
    if any(not ("!" <= char <= "~") for char in raw):
        raise ValueError("contains spaces or characters outside printable ASCII")
    if "#" in raw:
        raise ValueError("must not have a fragment (#)")
    if raw.count(_PLACEHOLDER) != 1:
        raise ValueError(f"must contain {_PLACEHOLDER} exactly once")
    rest = raw.replace(_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise ValueError(f"{_PLACEHOLDER} is the only placeholder")
    return raw


def same_task(answered: str, polled: str) -> bool:
    """Whether the ID an answer names is the polled one, allowing a relay's ``<model>:`` prefix
    on either (``sora-2:task_01H…`` answers for ``task_01H…`` and the other way round)."""
    return answered == polled or _unprefixed(answered) == polled or _unprefixed(polled) == answered


def _unprefixed(task_id: str) -> str:
    prefix, colon, rest = task_id.partition(":")
    return rest if colon and prefix and rest else task_id
