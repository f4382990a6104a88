"""tracker: watch asynchronous video-generation tasks until they finish, every status kept in SQL.

The public surface is what this module exports; the modules behind it may change.
"""

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
from tracker.python_api import Tracker
from tracker.settings import Settings
from tracker.store import QueryResult

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
