"""``Tracker``: the Python API for programs that embed tracker instead of running the command
(docs/python-api.md). It opens the database on first use and hands the daemon's work to
``tracker.daemon.runner.Daemon``."""

from __future__ import annotations

import asyncio
import heapq
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from functools import cached_property
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tracker.core.actions import Action, OneByOne
from tracker.core.clock import Clock, SystemClock
from tracker.core.daemons import DaemonRow
from tracker.core.eventloop import run_event_loop
from tracker.core.exports import EXPORT_TABLES
from tracker.core.follow_ups import Download
from tracker.core.ids import check_task_id, check_task_ids
from tracker.core.metadata import check_metadata
from tracker.core.models import (
    AddCount,
    AddResult,
    FinishReason,
    PassSummary,
    Position,
    RemoveResult,
    Snapshot,
    Stats,
    Task,
    TaskFilter,
)
from tracker.core.pauses import Pause
from tracker.core.report import ReportRow
from tracker.errors import ConfigError, UnknownTaskError, UsageError
from tracker.settings import Settings, settings_from_keywords
from tracker.settings.providers import declared_provider
from tracker.settings.values import parse_download_dir, report_query
from tracker.store import Database, QueryResult
from tracker.store.sandbox import DEFAULT_TIMEOUT_SECONDS

if TYPE_CHECKING:
    import httpx

    from tracker.daemon.runner import Daemon

# IDs sorted in memory at a time, while they are checked; the runs are then merged from disk.
SORTED_RUN = 100_000


class Tracker:
    """Register task IDs, poll them, read their history.

    >>> tracker = Tracker("sqlite:///videos.db", token="sk-…", poll_interval=10)
    >>> tracker.add(["video_68f0…"], label="launch trailer")
    >>> tracker.run(until_done=True)
    >>> [snapshot.status for snapshot in tracker.history("video_68f0…")]

    Every setting of the command line is a keyword argument named after its field in
    ``tracker.Settings`` (``poll_interval``, ``concurrency``, ``request_timeout``,
    ``give_up_after``, ``download_dir``, ``notify_url``, ``record``, …), given as a value or as
    the text its flag takes (``give_up_after="7d"``), and checked as the command line checks
    it: a bad one raises ConfigError naming the keyword. Or pass ``settings=`` whole. The
    environment is never read. The database is brought to the newest schema on first use;
    with ``read_only=True`` it is only read, as it is (``Database.open_for_reading``).
    """

    def __init__(
        self,
        database_url: str | None = None,
        api_base: str | None = None,
        token: str | None = None,
        *,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        read_only: bool = False,
        **options: object,
    ) -> None:
        given = {"database_url": database_url, "api_base": api_base, "token": token, **options}
        self.settings = settings_from_keywords(
            settings, **{name: value for name, value in given.items() if value is not None}
        )
        self._transport = transport
        self._clock = clock or SystemClock()
        self._read_only = read_only

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        read_only: bool = False,
    ) -> Tracker:
        return cls(settings=settings, transport=transport, clock=clock, read_only=read_only)

    @cached_property
    def database(self) -> Database:
        if self._read_only:
            return Database.open_for_reading(self.settings.database_url)
        return Database.open(self.settings.database_url)

    @cached_property
    def daemon(self) -> Daemon:
        from tracker.daemon.runner import Daemon  # the daemon's parts load with it only

        return Daemon(self.settings, self.database, clock=self._clock, transport=self._transport)

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.close()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def add(
        self,
        task_ids: Iterable[str],
        label: str | None = None,
        metadata: Any = None,
        provider: str | None = None,
    ) -> AddResult:
        """Register IDs, polled through ``provider`` (docs/providers.md); all or nothing: one
        invalid ID raises InvalidTaskIDError, a provider that the settings' providers file does
        not declare UnknownProviderError. The IDs and the result are lists in memory: for
        millions, ``add_stream``."""
        checked = check_task_ids(task_ids)  # before the database is opened: nothing written
        metadata = None if metadata is None else check_metadata(metadata)
        provider = declared_provider(provider, self.settings.providers)
        now = self._clock.now()
        return self.database.tasks.add_tasks(checked, label, now, metadata, provider)

    def add_stream(
        self,
        task_ids: Iterable[str],
        label: str | None = None,
        metadata: Any = None,
        provider: str | None = None,
    ) -> AddCount:
        """Register any number of IDs in flat memory. Every ID is checked before anything is
        written (they wait in temporary files), so one invalid ID raises InvalidTaskIDError
        and writes nothing; then they are written in order, 20,000 to a transaction, so a
        running daemon's writes wait for one batch at most (some 0.1 s on SQLite). Sorted, each
        batch lands in one stretch of the tasks' key: IDs given in any order are written as
        fast as IDs given in order. Should the database fail part way, the batches written
        stay: adding the same IDs again adds the rest."""
        metadata = None if metadata is None else check_metadata(metadata)
        provider = declared_provider(provider, self.settings.providers)
        with ExitStack() as stack:
            runs = []
            checked = map(check_task_id, task_ids)  # each as it is read: the first bad one raises
            while run := sorted(islice(checked, SORTED_RUN)):
                spool = stack.enter_context(
                    tempfile.TemporaryFile("w+", encoding="ascii", newline="\n")
                )
                spool.writelines(f"{task_id}\n" for task_id in run)
                spool.seek(0)
                runs.append(line[:-1] for line in spool)
            if not runs:
                return AddCount(added=0, existing=0)
            in_order = heapq.merge(*runs)
            return self.database.tasks.add_stream(in_order, label, metadata, self._clock, provider)

    def remove(self, task_ids: Iterable[str]) -> RemoveResult:
        """Stop watching; the history is kept. An unknown ID raises UnknownTaskError. With
        ``notify_url`` or ``on_finish`` set, each task removed owes its event on each, as any
        finished task does (a daemon with that channel delivers it)."""
        checked = check_task_ids(task_ids)
        channels = self.settings.notification_channels()
        return self.database.tasks.remove_tasks(checked, self._clock.now(), channels=channels)

    def poll_now(self, task_ids: Iterable[str]) -> list[str]:
        """Make unfinished tasks due at once: a running daemon (on PostgreSQL, any daemon on
        the database) polls them within a second. All or nothing: an unknown ID raises
        UnknownTaskError, a finished task TaskStateError naming each, and nothing is changed.
        The IDs made due."""
        return self._act(Action.POLL, task_ids)

    def reopen(self, task_ids: Iterable[str]) -> list[str]:
        """Watch tasks that ended (failed, not found, timed out, removed) again: unfinished,
        due at once, give-up-after counted from now, their history kept; each finishing again
        owes its notifications again. All or nothing: an unknown ID raises UnknownTaskError, a
        completed or unfinished task TaskStateError naming each, and nothing is changed. The
        IDs reopened."""
        return self._act(Action.REOPEN, task_ids)

    def _act(self, action: OneByOne, task_ids: Iterable[str]) -> list[str]:
        checked = check_task_ids(task_ids)
        return self.database.actions.act(action, checked, self._clock.now())

    def tasks(
        self, status: str | None = None, unfinished: bool = False, limit: int | None = None
    ) -> list[Task]:
        return self.database.reads.tasks(status=status, unfinished=unfinished, limit=limit)

    def stream_tasks(
        self,
        *,
        status: str | None = None,
        finished: bool | None = None,
        label: str | None = None,
        provider: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Task]:
        """Tasks newest first, read a page at a time (flat memory at any number), those after
        the task ``after`` (the last one of a previous page) and the first ``limit`` only if
        given. An unknown ``after`` raises UnknownTaskError."""
        which = TaskFilter(status=status, finished=finished, label=label, provider=provider)
        position = self._position(after)
        batch = 1000 if limit is None else max(1, min(limit, 1000))
        rows = self.database.reads.stream(which, batch, position)
        return rows if limit is None else islice(rows, limit)

    def count_tasks(
        self,
        *,
        status: str | None = None,
        finished: bool | None = None,
        label: str | None = None,
        provider: str | None = None,
        after: str | None = None,
    ) -> int:
        """How many tasks ``stream_tasks`` with the same arguments gives."""
        which = TaskFilter(status=status, finished=finished, label=label, provider=provider)
        return self.database.reads.count(which, self._position(after))

    def _position(self, after: str | None) -> Position | None:
        if after is None:
            return None
        task = self.database.reads.task(check_task_id(after))
        if task is None:
            raise UnknownTaskError(f"unknown task ID {after!r}")
        return Position(task.registered_at, task.task_id)

    def history(self, task_id: str) -> list[Snapshot]:
        return self.database.reads.history(task_id)

    def pauses(self) -> list[Pause]:
        """The pauses of the API in force now (a rate limit, a refused token): until when, why,
        and how many unfinished tasks they hold back."""
        return self.database.reads.pauses(self._clock.now())

    def stream_history(
        self, task_id: str, *, first: int | None = None, last: int | None = None
    ) -> Iterator[Snapshot]:
        """The task's snapshots, oldest first (the ``first`` or ``last`` N only), read a page
        at a time. An unknown task raises UnknownTaskError."""
        return self.database.reads.stream_history(check_task_id(task_id), first=first, last=last)

    def daemons(self) -> list[DaemonRow]:
        """The daemons at work on the database, and those that stopped or were lost in the last
        day, the most recently started first; ``state(now)`` says which."""
        return self.database.daemons.rows()

    def stats(self) -> Stats:
        """Counts of tasks, backlog, recent polls, downloads and notifications."""
        return self.database.reads.stats(self._clock.now())

    def report(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        by: str | Sequence[str] | None = None,
    ) -> list[ReportRow]:
        """The tasks registered from ``since`` (a week ago unless given) until ``until`` (now
        unless given), grouped by ``by`` (``"model,size"`` or a list; none: one row of them
        all), as ``tracker report`` gives them (docs/insights.md). A moment is a datetime, an
        age (``"36h"``) or an ISO date (``"2026-11-01"``); a value that cannot be used raises
        ReportQueryError naming it, before the database is opened."""
        query = report_query(self._clock.now(), since, until, by)
        return self.database.reports.report(query)

    def prune(self, older_than: float, dry_run: bool = False) -> int:
        """Delete (or count) snapshots of finished tasks older than ``older_than`` seconds,
        keeping each task's first and last snapshot and every status change."""
        from tracker.daemon.retention import prune

        cutoff = self._clock.now() - timedelta(seconds=older_than)
        return prune(self.database.retention, cutoff, dry_run)

    def export(self, table: str, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """The rows of ``tasks`` or ``snapshots``, streamed."""
        if table not in EXPORT_TABLES:
            raise UsageError(f"unknown table {table!r}: tasks or snapshots")
        return self.database.reads.export_rows(table, since)

    def sql(self, query: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> QueryResult:
        """Run one read-only SQL statement; a write or several statements raise
        QueryRefusedError, a mistake in the query QueryError, a query still running after
        ``timeout`` seconds QueryTimeoutError."""
        return self.database.sql.run_read_only(query, timeout)

    def poll_once(self, all_unfinished: bool = False) -> PassSummary:
        """Poll every due unfinished task once (every unfinished one with ``all_unfinished``)."""
        return run_event_loop(self.poll_once_async(all_unfinished))

    async def poll_once_async(self, all_unfinished: bool = False) -> PassSummary:
        return await self.daemon.poll_pass(all_unfinished)

    def run(self, until_done: bool = False) -> None:
        """Run the daemon in this thread until interrupted (or until nothing is left)."""
        run_event_loop(self.run_async(until_done=until_done, handle_signals=True))

    async def run_async(
        self,
        until_done: bool = False,
        stop: asyncio.Event | None = None,
        handle_signals: bool = False,
    ) -> None:
        """The daemon inside a running event loop; returns once ``stop`` is set."""
        await self.daemon.run(until_done=until_done, stop=stop, handle_signals=handle_signals)

    def wait(self, task_ids: Iterable[str], timeout: float | None = None) -> list[Task]:
        """Run the daemon until these tasks have finished and what they owe (downloads,
        notifications configured here) is settled; the tasks as they ended, in the order
        given. Other due tasks are polled meanwhile. After ``timeout`` seconds the daemon stops
        and TimeoutError is raised; an unknown ID raises UnknownTaskError, a task of a provider
        the settings do not declare UndeclaredProviderError (nothing here would ever poll
        it)."""
        return run_event_loop(self.wait_async(task_ids, timeout, handle_signals=True))

    async def wait_async(
        self, task_ids: Iterable[str], timeout: float | None = None, handle_signals: bool = False
    ) -> list[Task]:
        """``wait`` inside a running event loop."""
        checked = list(dict.fromkeys(check_task_ids(task_ids)))
        tasks = await asyncio.to_thread(self._waited_for, checked)
        stop = asyncio.Event()
        late = None
        if timeout is not None:
            late = asyncio.get_running_loop().call_later(timeout, stop.set)
        try:
            await self.daemon.run(
                until_done=True, only=checked, stop=stop, handle_signals=handle_signals
            )
        finally:
            if late is not None:
                late.cancel()
        tasks = await asyncio.to_thread(self._waited_for, checked)
        unfinished = [task.task_id for task in tasks if not task.finished]
        if unfinished:
            raise TimeoutError(
                f"{len(unfinished)} of {len(tasks)} tasks still unfinished after {timeout:g}s "
                f"(the first: {unfinished[0]!r})"
            )
        return tasks

    def _waited_for(self, task_ids: list[str]) -> list[Task]:
        tasks = []
        for task_id in task_ids:
            task = self.database.reads.task(task_id)
            if task is None:
                raise UnknownTaskError(f"unknown task ID {task_id!r}")
            tasks.append(task)
        return tasks

    def download(
        self, task_id: str, variants: Iterable[str] = ("video",), directory: str | None = None
    ) -> list[Download]:
        """Fetch a completed task's files now (retrying until they expire); return their rows."""
        return run_event_loop(self.download_async(task_id, variants, directory))

    async def download_async(
        self, task_id: str, variants: Iterable[str] = ("video",), directory: str | None = None
    ) -> list[Download]:
        task = await asyncio.to_thread(self.database.reads.task, task_id)
        if task is None:
            raise UnknownTaskError(f"unknown task ID {task_id!r}")
        if task.finish_reason != FinishReason.COMPLETED:
            raise UsageError(
                f"task {task_id!r} has not completed (finish_reason "
                f"{task.finish_reason or 'none: still running'}); only completed videos have files"
            )
        if directory is not None:
            try:
                directory = parse_download_dir(directory)
            except ValueError as exc:
                raise ConfigError(f"directory {directory!r}: {exc}") from None
        elif self.settings.download_dir is not None:
            directory = self.settings.download_dir
        else:
            raise ConfigError("no download directory: use --download-dir or TRACKER_DOWNLOAD_DIR")
        return await self.daemon.download(task_id, variants, directory)
