"""The exceptions tracker raises.

    TrackerError                  anything tracker raises on purpose
    ├── UsageError                bad input from the user; the CLI exits 2
    │   ├── ConfigError           a setting (flag, variable or token file) that cannot be used
    │   ├── InvalidTaskIDError    a task ID outside the rules (docs/cli.md, Task IDs)
    │   ├── UnknownProviderError  a task registered under a provider the providers file does
    │   │                         not declare: no daemon would ever poll it
    │   ├── UnknownTaskError      a command named a task that is not registered
    │   ├── TaskStateError        a task is not in a state the action takes (polling a finished
    │   │                         task now, reopening a completed or a watched one)
    │   ├── NoDatabaseError       a command that only reads named an SQLite file that is not there
    │   ├── QueryRefusedError     `tracker sql` was given a write or several statements
    │   ├── QueryError            `tracker sql` was given a query with a mistake in it
    │   └── ReportQueryError      a report's window or keys cannot be used (names the field)
    ├── DatabaseError             the database cannot be reached, opened or migrated; exit 1
    ├── QueryTimeoutError         `tracker sql` stopped a query at its timeout; exit 1
    ├── UndeclaredProviderError   `run --until-done` beside unfinished tasks of a provider the
    │                             configuration does not declare: they would never be done
    ├── LocalResourceError        this machine ran out of open files, buffers, memory or ports
    │                             for a request: the daemon's trouble, not the task's
    └── client.ClientError        what tracker.client raises: its own tree is in its docstring

Failures of single polls are not exceptions: the API client turns them into error snapshots,
except a LocalResourceError, which says nothing about the task (docs/failures.md).
"""

from __future__ import annotations

import errno
import ssl
from typing import Literal

# What the kernel says when this machine, not the peer, is out of something a connection needs:
# descriptors (the process's, the system's), socket buffers, memory, ephemeral ports.
_LOCAL_SHORTAGES = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL}
)


class TrackerError(Exception):
    """Base of every exception tracker raises on purpose."""


class UsageError(TrackerError):
    """The user asked for something invalid; nothing was written."""


class ConfigError(UsageError):
    """A setting cannot be used as given."""


class InvalidTaskIDError(UsageError):
    """A task ID breaks the rules (docs/cli.md, Task IDs)."""


class UnknownProviderError(UsageError):
    """Tasks were to be registered under a provider the providers file does not declare
    (``given`` None: under ``default``, which it does not declare): no daemon would poll them."""

    def __init__(self, given: str | None, declared: list[str]) -> None:
        names = ", ".join(declared)
        if given is None:
            message = (
                f"no provider given, and the providers file declares no 'default': name one "
                f"of {names}"
            )
        else:
            message = f"unknown provider {given[:80]!r}: the providers file declares {names}"
        super().__init__(message)
        self.given = given
        self.declared = declared


class UnknownTaskError(UsageError):
    """A command named a task ID that is not registered."""


#: Why an action leaves a task as it is: ``finished`` (poll now: it is no longer watched),
#: ``completed`` (reopen: its video is made, nothing is left to watch), ``unfinished`` (reopen:
#: it is watched already).
Refusal = Literal["finished", "completed", "unfinished"]


class TaskStateError(UsageError):
    """An action was refused for the state of tasks it names (``refused``: each ID, why, and how
    it finished); nothing was changed. The message has a line per task."""

    def __init__(self, refused: list[tuple[str, Refusal, str | None]]) -> None:
        super().__init__("\n".join(_refusal_line(*one) for one in refused))
        self.refused = refused


def _refusal_line(task_id: str, why: Refusal, finish_reason: str | None) -> str:
    if why == "unfinished":
        return f"task {task_id!r} is still watched (unfinished): there is nothing to reopen"
    if why == "completed":
        return f"task {task_id!r} completed: a completed video is not watched again"
    if finish_reason == "completed":
        return f"task {task_id!r} has completed: there is nothing left to poll"
    return (
        f"task {task_id!r} has finished ({finish_reason}): it is no longer polled; "
        "reopen it to watch it again"
    )


class NoDatabaseError(UsageError):
    """Reading was asked of an SQLite file that does not exist; none was created."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"no database at {path}: `tracker add` creates one; --db (or TRACKER_DATABASE_URL) "
            "names another"
        )
        self.path = path


class QueryRefusedError(UsageError):
    """`tracker sql` refused to run a query: a statement that writes, or several statements."""


class QueryError(UsageError):
    """`tracker sql` could not run a query because of a mistake in it (its syntax, a table or
    a column that does not exist); the message is the database's own first line."""


class ReportQueryError(UsageError):
    """A report was asked for with a value it cannot use: ``field`` is ``since``, ``until`` or
    ``by`` (the command names its flag, the API its parameter); the message says why."""

    def __init__(self, field: Literal["since", "until", "by"], reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class DatabaseError(TrackerError):
    """The database cannot be reached, opened or brought to the current schema."""


class QueryTimeoutError(TrackerError):
    """`tracker sql` stopped a query that ran past its timeout; nothing is wrong with it but
    its cost."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"stopped: the query ran past its timeout of {seconds:g}s "
            "(tracker sql --timeout gives it longer)"
        )
        self.seconds = seconds


class UndeclaredProviderError(TrackerError):
    """Running until done is refused: unfinished tasks name providers the configuration does
    not declare, so they would never be polled, and the run would end as if they were done."""

    def __init__(self, providers: list[str]) -> None:
        names = ", ".join(repr(name) for name in providers)
        super().__init__(
            f"unfinished tasks name the provider{'s' * (len(providers) > 1)} {names}, which "
            "the configuration does not declare: they would never be done; declare it, or "
            "move the tasks to a declared provider (docs/providers.md)"
        )
        self.providers = providers


class LocalResourceError(TrackerError):
    """A request could not be made for want of a local resource (an open file, socket buffers,
    memory, an ephemeral port): nothing was learnt about the task, so it is retried, not
    failed."""

    @classmethod
    def of(cls, exc: BaseException, what: str) -> LocalResourceError | None:
        """The shortage behind ``exc`` (the OS error itself or one it was raised from), said as
        ``what`` failed, or None when ``exc`` is some other failure."""
        seen: set[int] = set()
        cause: BaseException | None = exc
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            # TLS errors number their own reasons: an errno there means something else.
            if (
                isinstance(cause, OSError)
                and not isinstance(cause, ssl.SSLError)
                and cause.errno in _LOCAL_SHORTAGES
            ):
                return cls(f"{what}: {cause.strerror or errno.errorcode[cause.errno]}")
            cause = cause.__cause__ or cause.__context__
        return None
