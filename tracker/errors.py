"""The exceptions tracker raises.

    TrackerError                  anything tracker raises on purpose
    ├── UsageError                bad input from the user; the CLI exits 2
    │   ├── ConfigError           a setting (flag, variable or token file) that cannot be used
    │   ├── InvalidTaskIDError    a task ID outside the rules (README, Commands)
    │   ├── UnknownTaskError      a command named a task that is not registered
    │   ├── QueryRefusedError     `tracker sql` was given a write or several statements
    │   └── QueryError            `tracker sql` was given a query with a mistake in it
    └── DatabaseError             the database cannot be reached, opened or migrated; exit 1

Failures of single polls are not exceptions: the API client turns them into error snapshots.
"""

from __future__ import annotations


class TrackerError(Exception):
    """Base of every exception tracker raises on purpose."""


class UsageError(TrackerError):
    """The user asked for something invalid; nothing was written."""


class ConfigError(UsageError):
    """A setting cannot be used as given."""


class InvalidTaskIDError(UsageError):
    """A task ID breaks the rules (README, Commands)."""


class UnknownTaskError(UsageError):
    """A command named a task ID that is not registered."""


class QueryRefusedError(UsageError):
    """`tracker sql` refused to run a query: a statement that writes, or several statements."""


class QueryError(UsageError):
    """`tracker sql` could not run a query because of a mistake in it (its syntax, a table or
    a column that does not exist); the message is the database's own first line."""


class DatabaseError(TrackerError):
    """The database cannot be reached, opened or brought to the current schema."""
