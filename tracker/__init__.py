"""tracker: watch asynchronous video-generation tasks until they finish, every status kept in SQL.

The public surface is what this module exports; the modules behind it may change.
"""

from tracker.app import Tracker
from tracker.errors import (
    ConfigError,
    DatabaseError,
    InvalidTaskIDError,
    QueryRefusedError,
    TrackerError,
    UnknownTaskError,
    UsageError,
)
from tracker.models import AddResult, FinishReason, RemoveResult, Snapshot, Task
from tracker.poller import PassSummary
from tracker.repository import QueryResult

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
