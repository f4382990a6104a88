"""``Tracker``: the Python API for programs that embed tracker instead of running the command."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from tracker import db
from tracker.clock import Clock, SystemClock
from tracker.config import (
    DEFAULT_API_BASE,
    DEFAULT_DATABASE_URL,
    Secret,
    Settings,
    check_daemon_settings,
    checked_token,
    child_environment,
    load_settings,
    parse_download_dir,
)
from tracker.dbthread import DatabaseThread
from tracker.downloads import Downloader
from tracker.errors import ConfigError, UnknownTaskError, UsageError
from tracker.eventloop import run_event_loop
from tracker.ids import check_task_ids
from tracker.models import (
    AddResult,
    Download,
    FinishReason,
    FollowUps,
    NewDownload,
    RemoveResult,
    Snapshot,
    Stats,
    Task,
)
from tracker.notify import Channels, Notifier
from tracker.poller import ASSETS_LAST, PassSummary, Policy, Poller
from tracker.repository import QueryResult, SQLRepository
from tracker.retention import Retention, prune
from tracker.webhooks import WebhookReceiver, secret_key

if TYPE_CHECKING:
    import httpx

    from tracker.client import VideoClient
    from tracker.metrics import GaugeRefresher, Metrics

logger = logging.getLogger(__name__)

NOTIFY_TIMEOUT = 10.0
DRAIN_SECONDS = 3.0


async def _listen(
    start: Callable[[str, int], Awaitable[int]], flag: str, host: str, port: int
) -> int:
    """Start a server of the daemon's; a port it cannot have is a setting to fix (exit 2)."""
    try:
        return await start(host, port)
    except OSError as exc:
        raise ConfigError(f"{flag} {port}: cannot listen: {exc.strerror or exc}") from None


def _saved_in(download: Download, directory: str) -> bool:
    """Whether a download is done and its file is still there, in ``directory``."""
    if download.state != "done" or download.path is None:
        return False
    path = Path(download.path)
    return path.parent == Path(directory) and path.is_file()


def daemon_id() -> str:
    """Who holds a lease: host, PID namespace, process, and a random part for uniqueness."""
    return f"{_process_home()}:{os.getpid()}:{secrets.token_hex(4)}"


def _process_home() -> str:
    """Where a PID names one process: this boot of this machine (the boot ID is random per
    boot, so hosts sharing a name differ) and this PID namespace (containers have their own)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        return f"{socket.gethostname()[:48]}:unknown"
    return f"{socket.gethostname()[:48]}:{boot}.{namespace}"


def release_leases_of_dead_daemons(repository: SQLRepository) -> list[str]:
    """Give back at once the leases of daemons of this machine that are gone (a kill -9), so a
    restart goes on where they stopped instead of waiting for the leases to expire."""
    home = _process_home()
    if home.endswith(":unknown"):
        return []  # without a boot ID, a PID here cannot be told from one elsewhere
    dead = []
    for owner in repository.lease_owners():
        owner_home, _, rest = owner.rpartition(":")[0].rpartition(":")
        if owner_home == home and rest.isdigit() and not _is_running(int(rest)):
            dead.append(owner)
    if dead:
        repository.release_owners(dead)
        logger.info("released the leases of %d stopped daemons: %s", len(dead), ", ".join(dead))
    return dead


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Tracker:
    """Register task IDs, poll them, read their history.

    >>> tracker = Tracker(database_url="sqlite:///videos.db", token="sk-…")
    >>> tracker.add(["video_68f0…"], label="launch trailer")
    >>> tracker.run(until_done=True)
    >>> [snapshot.status for snapshot in tracker.history("video_68f0…")]

    The database is brought to the newest schema on first use. Settings are checked as the
    command line checks them; a bad one raises ConfigError.
    """

    def __init__(
        self,
        database_url: str = DEFAULT_DATABASE_URL,
        api_base: str = DEFAULT_API_BASE,
        token: str | Secret | None = None,
        *,
        poll_interval: float = 15.0,
        concurrency: int = 32,
        request_timeout: float = 30.0,
        give_up_after: float | str = 24 * 3600.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        settings = load_settings(
            {
                "database_url": database_url,
                "api_base": api_base,
                "poll_interval": str(poll_interval),
                "concurrency": str(concurrency),
                "request_timeout": str(request_timeout),
                "give_up_after": str(give_up_after),
            },
            environ={},
        )
        if isinstance(token, str):
            token = checked_token(token, "token")
        self._init(replace(settings, token=token), transport=transport, clock=clock)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> Tracker:
        tracker = cls.__new__(cls)
        tracker._init(settings, transport=transport, clock=clock)
        return tracker

    def _init(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None,
        clock: Clock | None,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._clock = clock or SystemClock()

    @cached_property
    def _engine(self) -> Engine:
        engine = db.create_engine(self.settings.database_url)
        try:
            db.ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return engine

    @cached_property
    def repository(self) -> SQLRepository:
        return SQLRepository(self._engine)

    def close(self) -> None:
        if "_engine" in self.__dict__:
            self._engine.dispose()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _now(self) -> datetime:
        return self._clock.now()

    def add(self, task_ids: Iterable[str], label: str | None = None) -> AddResult:
        """Register IDs; all or nothing: one invalid ID raises InvalidTaskIDError."""
        checked = check_task_ids(task_ids)  # before the database is opened: nothing written
        return self.repository.add_tasks(checked, label, self._now())

    def remove(self, task_ids: Iterable[str]) -> RemoveResult:
        """Stop watching; the history is kept. An unknown ID raises UnknownTaskError."""
        checked = check_task_ids(task_ids)
        return self.repository.remove_tasks(checked, self._now())

    def tasks(
        self, status: str | None = None, unfinished: bool = False, limit: int | None = None
    ) -> list[Task]:
        return self.repository.tasks(status=status, unfinished=unfinished, limit=limit)

    def history(self, task_id: str) -> list[Snapshot]:
        return self.repository.history(task_id)

    def stats(self) -> Stats:
        """Counts of tasks, backlog, recent polls, downloads and notifications."""
        return self.repository.stats(self._now())

    def prune(self, older_than: float, dry_run: bool = False) -> int:
        """Delete (or count) snapshots of finished tasks older than ``older_than`` seconds,
        keeping each task's first and last snapshot and every status change."""
        return prune(self.repository, self._now() - timedelta(seconds=older_than), dry_run)

    def export(self, table: str, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """The rows of ``tasks`` or ``snapshots``, streamed."""
        if table not in ("tasks", "snapshots"):
            raise UsageError(f"unknown table {table!r}: tasks or snapshots")
        return self.repository.export_rows(table, since)

    def sql(self, query: str) -> QueryResult:
        """Run one read-only SQL statement; writes raise QueryRefusedError."""
        return self.repository.run_read_only(query)

    def poll_once(self, all_unfinished: bool = False) -> PassSummary:
        """Poll every due unfinished task once (every unfinished one with ``all_unfinished``)."""
        return run_event_loop(self.poll_once_async(all_unfinished))

    async def poll_once_async(self, all_unfinished: bool = False) -> PassSummary:
        await asyncio.to_thread(release_leases_of_dead_daemons, self.repository)
        async with self._client() as client:
            poller = self._poller(client)
            try:
                return await poller.poll_pass(all_unfinished)
            finally:
                poller.close()

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
        from tracker.daemon import Worker, run_daemon  # APScheduler is loaded by the daemon only

        check_daemon_settings(self.settings)
        await asyncio.to_thread(release_leases_of_dead_daemons, self.repository)
        owner = daemon_id()
        database = DatabaseThread()
        follow_ups = self._follow_ups()
        try:
            async with AsyncExitStack() as stack:
                client = await stack.enter_async_context(self._client())
                metrics = None
                if self.settings.metrics_port is not None:
                    # prometheus-client is loaded by a daemon that serves metrics only
                    from tracker.metrics import Metrics

                    metrics = Metrics()
                poller = self._poller(client, owner, database, follow_ups, metrics)
                stack.callback(poller.close)
                workers: list[Worker] = []
                if metrics is not None:
                    workers.append(await self._serve_metrics(stack, metrics, poller, database))
                if self.settings.retain is not None:
                    workers.append(
                        Retention(
                            self.repository,
                            self.settings.retain,
                            database=database,
                            clock=self._clock,
                        )
                    )
                if self.settings.download_dir is not None:
                    directory = self.settings.download_dir
                    workers.append(await self._downloader(stack, owner, database, directory))
                if follow_ups.channels:
                    workers.append(await self._notifier(stack, owner, database, follow_ups))
                if self.settings.webhook_port is not None:
                    await self._receive_webhooks(stack, database, poller)
                repository = self.repository
                await run_daemon(
                    poller,
                    Policy.from_settings(self.settings),
                    until_done=until_done,
                    stop=stop,
                    handle_signals=handle_signals,
                    workers=workers,
                    owed=(
                        lambda: database.run(
                            repository.follow_ups_owed,
                            self.settings.download_dir is not None,
                            follow_ups.channels,
                        )
                    )
                    if follow_ups
                    else None,
                )
                # Give back whatever is still claimed: a restart or another daemon takes it.
                await database.run(repository.release_owners, [owner])
        finally:
            database.close()

    def download(
        self, task_id: str, variants: Iterable[str] = ("video",), directory: str | None = None
    ) -> list[Download]:
        """Fetch a completed task's files now (retrying until they expire); return their rows."""
        return run_event_loop(self.download_async(task_id, variants, directory))

    async def download_async(
        self, task_id: str, variants: Iterable[str] = ("video",), directory: str | None = None
    ) -> list[Download]:
        task = await asyncio.to_thread(self.repository.task, task_id)
        if task is None:
            raise UnknownTaskError(f"unknown task ID {task_id!r}")
        if task.finish_reason != FinishReason.COMPLETED:
            raise UsageError(
                f"task {task_id!r} has not completed (finish_reason "
                f"{task.finish_reason or 'none: still running'}); only completed videos have files"
            )
        if directory is not None:
            directory = parse_download_dir(directory)
        elif self.settings.download_dir is not None:
            directory = self.settings.download_dir
        else:
            raise ConfigError("no download directory: use --download-dir or TRACKER_DOWNLOAD_DIR")
        now = self._now()
        expires_at = task.expires_at or now + ASSETS_LAST
        requested = list(dict.fromkeys(variants))
        saved = {
            row.variant
            for row in await asyncio.to_thread(self.repository.downloads, task_id)
            if row.variant in requested and _saved_in(row, directory)
        }
        wanted = [NewDownload(v, expires_at) for v in requested if v not in saved]
        if wanted:
            await asyncio.to_thread(self.repository.schedule_downloads, task_id, wanted, now)
        owner = daemon_id()
        database = DatabaseThread()
        try:
            async with AsyncExitStack() as stack:
                downloader = await self._downloader(stack, owner, database, directory, task_id)
                try:
                    while True:
                        rows = await database.run(self.repository.downloads, task_id)
                        if not any(row.state == "pending" for row in rows):
                            return [row for row in rows if row.variant in requested]
                        await downloader.tick()
                        await asyncio.sleep(0.2)
                finally:
                    await downloader.drain(DRAIN_SECONDS)
                    await database.run(self.repository.release_owners, [owner])
        finally:
            database.close()

    def _follow_ups(self) -> FollowUps:
        settings = self.settings
        channels = tuple(
            channel
            for channel, wanted in (
                ("webhook", settings.notify_url),
                ("command", settings.on_finish),
            )
            if wanted
        )
        variants = settings.download_variants if settings.download_dir else ()
        return FollowUps(variants=variants, channels=channels)

    async def _downloader(
        self,
        stack: AsyncExitStack,
        owner: str,
        database: DatabaseThread,
        directory: str,
        task_id: str | None = None,
    ) -> Downloader:
        from tracker.client import ContentClient
        from tracker.proxy_router import proxy_router

        Path(directory).mkdir(parents=True, exist_ok=True)
        source = ContentClient(
            self.settings.api_base,
            self.settings.require_token(),
            timeout=self.settings.request_timeout,
            transport=proxy_router(self.settings.proxy),
        )
        stack.push_async_callback(source.aclose)
        return Downloader(
            self.repository,
            source,
            Path(directory),
            owner=owner,
            database=database,
            clock=self._clock,
            task_id=task_id,
        )

    async def _notifier(
        self, stack: AsyncExitStack, owner: str, database: DatabaseThread, follow_ups: FollowUps
    ) -> Notifier:
        from tracker.client import EventPoster
        from tracker.proxy_router import proxy_router

        settings = self.settings
        poster = None
        if settings.notify_url is not None:
            poster = EventPoster(timeout=NOTIFY_TIMEOUT, transport=proxy_router(settings.proxy))
            stack.push_async_callback(poster.aclose)
        channels = Channels(
            url=settings.notify_url,
            poster=poster,
            key=secret_key(settings.notify_secret.reveal()) if settings.notify_secret else None,
            command=settings.on_finish or (),
            command_timeout=settings.on_finish_timeout,
            command_environment=child_environment(),
        )
        return Notifier(
            self.repository,
            channels,
            owner=owner,
            database=database,
            clock=self._clock,
            channels_claimed=follow_ups.channels,
        )

    async def _serve_metrics(
        self, stack: AsyncExitStack, metrics: Metrics, poller: Poller, database: DatabaseThread
    ) -> GaugeRefresher:
        from tracker.metrics import GaugeRefresher, MetricsServer

        settings = self.settings
        assert settings.metrics_port is not None
        refresher = GaugeRefresher(metrics, poller, self.repository, database, self._clock)
        server = MetricsServer(metrics, refresher.database_up)
        self.metrics_port = await _listen(
            server.start, "--metrics-port", settings.metrics_host, settings.metrics_port
        )
        stack.push_async_callback(server.close)
        return refresher

    async def _receive_webhooks(
        self, stack: AsyncExitStack, database: DatabaseThread, poller: Poller
    ) -> None:
        settings = self.settings
        assert settings.webhook_port is not None and settings.webhook_secret is not None
        repository, clock = self.repository, self._clock

        async def poll_now(task_id: str) -> bool:
            poller.poll_soon(task_id)
            return await database.run(repository.poll_now, task_id, clock.now())

        receiver = WebhookReceiver(
            secret_key(settings.webhook_secret.reveal()),
            poll_now,
            lambda: clock.now().timestamp(),
        )
        self.webhook_port = await _listen(
            receiver.start, "--webhook-port", settings.webhook_host, settings.webhook_port
        )
        stack.push_async_callback(receiver.close)

    def _client(self) -> VideoClient:
        from tracker.client import VideoClient  # HTTP is loaded by the commands that poll

        return VideoClient(
            self.settings.api_base,
            self.settings.require_token(),
            timeout=self.settings.request_timeout,
            max_connections=self.settings.concurrency,
            transport=self._transport,
            proxies=self.settings.proxy,
        )

    def _poller(
        self,
        client: VideoClient,
        owner: str | None = None,
        database: DatabaseThread | None = None,
        follow_ups: FollowUps | None = None,
        observer: Metrics | None = None,
    ) -> Poller:
        return Poller(
            self.repository,
            client,
            policy=Policy.from_settings(self.settings),
            owner=owner or daemon_id(),
            concurrency=self.settings.concurrency,
            clock=self._clock,
            follow_ups=follow_ups,
            database=database,
            record_changes_only=self.settings.record == "changes",
            observer=observer,
        )
