"""Open files: at start the daemon raises its soft limit to the hard one (as Go's runtime does
since 1.19) and checks that what it may hold at once fits under it, so that it refuses to start
rather than fail requests later (docs/scaling.md)."""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass

from tracker.errors import ConfigError

logger = logging.getLogger(__name__)

# SQLAlchemy's pool at its fullest (5 connections and 10 overflow), three files each on SQLite:
# the database, its write-ahead log and its shared memory.
DATABASE_FILES = 45
# Clients of one listening port (the dashboard, a scraper, the API's webhooks) counted in
# advance; more are served while descriptors last.
SERVED_CONNECTIONS = 64
# A download holds a connection and the file it writes; a notification a connection, or an
# --on-finish command's three pipes and its process handle.
FILES_PER_DOWNLOAD = 2
FILES_PER_NOTIFICATION = 4
# Standard streams, the event loop's own descriptors, log files, name lookups, threads.
MARGIN = 64


@dataclass(frozen=True)
class OpenFiles:
    """What a daemon may hold open at once."""

    requests: int  # --concurrency: one connection each
    listeners: int = 0
    downloads: int = 0
    notifications: int = 0

    @property
    def own(self) -> int:
        """The files of the daemon's own needs, beside its requests."""
        return (
            DATABASE_FILES
            + self.listeners * (1 + SERVED_CONNECTIONS)
            + self.downloads * FILES_PER_DOWNLOAD
            + self.notifications * FILES_PER_NOTIFICATION
            + MARGIN
        )

    @property
    def total(self) -> int:
        return self.requests + self.own


def raise_open_file_limit() -> int | None:
    """Raise the soft open-file limit to the hard one; the limit then in force (None where
    there is none to read, on Windows, or none at all)."""
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        # An unlimited hard limit is above the kernel's ceiling: then the soft one stays.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if raised != soft:
            logger.info("open-file limit raised from %d to %d (the hard limit)", soft, raised)
            soft = raised
    return None if soft == resource.RLIM_INFINITY else soft


def ensure_open_files(needed: OpenFiles) -> None:
    """Raise the soft open-file limit to the hard one; ConfigError (exit 2) when ``needed``
    does not fit under it."""
    limit = raise_open_file_limit()
    if limit is not None and needed.total > limit:
        raise ConfigError(
            f"{needed.requests:,} requests in flight (--concurrency, or the sum of the "
            f"providers' concurrency) need {needed.total:,} open files ({needed.own:,} "
            f"for the database, servers and workers besides one per request), but this "
            f"process may open {limit:,} (its hard limit): raise it with LimitNOFILE= in the "
            "systemd unit or `ulimit -n` in the shell that starts tracker, or lower "
            "--concurrency (docs/scaling.md)"
        )
