"""tracker: watch asynchronous video-generation tasks until they finish, every status kept in SQL.

The public surface is what this module exports; the modules behind it may change.
"""

import importlib
from typing import TYPE_CHECKING, Any

from tracker._version import __version__
from tracker.core.models import (
    AddCount,
    AddResult,
    FinishReason,
    PassSummary,
    RemoveResult,
    Snapshot,
    Task,
)
from tracker.core.pauses import Pause
from tracker.core.report import ReportRow
from tracker.core.secrets import Secret
from tracker.errors import (
    ConfigError,
    DatabaseError,
    InvalidTaskIDError,
    NoDatabaseError,
    QueryError,
    QueryRefusedError,
    QueryTimeoutError,
    ReportQueryError,
    TaskStateError,
    TrackerError,
    UndeclaredProviderError,
    UnknownProviderError,
    UnknownTaskError,
    UsageError,
)

if TYPE_CHECKING:
    from tracker.python_api import Tracker
    from tracker.settings import Settings
    from tracker.store import QueryResult

# Loaded when first asked for: they bring the database layer (SQLAlchemy and the rest), which
# an application that only talks to a tracker over HTTP (tracker.client) never needs.
_ON_DEMAND = {
    "Tracker": "tracker.python_api",
    "Settings": "tracker.settings",
    "QueryResult": "tracker.store",
}

__all__ = [
    "AddCount",
    "AddResult",
    "ConfigError",
    "DatabaseError",
    "FinishReason",
    "InvalidTaskIDError",
    "NoDatabaseError",
    "PassSummary",
    "Pause",
    "QueryError",
    "QueryRefusedError",
    "QueryResult",
    "QueryTimeoutError",
    "RemoveResult",
    "ReportQueryError",
    "ReportRow",
    "Secret",
    "Settings",
    "Snapshot",
    "Task",
    "TaskStateError",
    "Tracker",
    "TrackerError",
    "UndeclaredProviderError",
    "UnknownProviderError",
    "UnknownTaskError",
    "UsageError",
    "__version__",
]


if not TYPE_CHECKING:  # for the type checker the names above are imported: it checks them

    def __getattr__(name: str) -> Any:
        module = _ON_DEMAND.get(name)
        if module is None:
            raise AttributeError(f"module 'tracker' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
