"""tracker: watch asynchronous video-generation tasks until they finish, every status kept in SQL.

The public surface is what this module exports; the modules behind it may change.
"""

from tracker.core.models import AddResult, FinishReason, RemoveResult, Snapshot, Task
from tracker.daemon.poller import PassSummary
from tracker.errors import (
    ConfigError,
    DatabaseError,
    InvalidTaskIDError,
    QueryRefusedError,
    TrackerError,
    UnknownTaskError,
    UsageError,
)
from tracker.python_api import Tracker
from tracker.store.repository import QueryResult

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "ConfigError",
    "DatabaseError",
    "FinishReason",
    "InvalidTaskIDError",
    "PassSummary",
    "QueryRefusedError",
    "QueryResult",
    "RemoveResult",
    "Snapshot",
    "Task",
    "Tracker",
    "TrackerError",
    "UnknownTaskError",
    "UsageError",
]
