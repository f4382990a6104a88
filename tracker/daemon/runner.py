"""A daemon wired from its settings: the poller on the API client, the workers beside it
(downloads, notifications, retention, metrics), the servers it listens on; and the one-off
passes the commands ``poll`` and ``download`` make with the same parts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from tracker.core.clock import Clock
from tracker.core.follow_ups import Download, FollowUps, NewDownload
from tracker.core.models import PassSummary
from tracker.core.secrets import secret_key
from tracker.core.video import ASSETS_LAST
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.descriptors import OpenFiles, ensure_open_files
from tracker.daemon.lanes import Lanes
from tracker.daemon.leases import daemon_id, release_leases_of_dead_daemons
from tracker.daemon.poller import Poller
from tracker.daemon.rules import Policy
from tracker.daemon.scheduler import DRAIN_SECONDS, Worker, run_daemon
from tracker.daemon.serving import Listener, check_exposure, listeners
from tracker.daemon.until_done import refuse_undeclared
from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.settings.options import WEBHOOK_SECRET_VARIABLE
from tracker.settings.providers import Provider
from tracker.store import Database

if TYPE_CHECKING:
    import httpx

    from tracker.daemon.downloads import Downloader
    from tracker.daemon.metrics import Metrics
    from tracker.daemon.notify import Notifier

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

NOTIFY_TIMEOUT = 10.0


class Daemon:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._database = database
        self._clock = clock
        self._transport = transport
        self._providers = settings.polled_providers()
        #: The ports its HTTP service listens on, by the flag that asked ("--http-port",
        #: "--metrics-port", "--webhook-port"), once it does.
        self.ports: dict[str, int] = {}
        self._running: Lanes | None = None

    def wake(self) -> None:
        """A task was registered or made due in this process: a running daemon claims at its
        next tick instead of waiting out its idle check (any thread may call this)."""
        if self._running is not None:
            self._running.wake()

    async def run(
        self,
        *,
        until_done: bool = False,
        stop: asyncio.Event | None = None,
        handle_signals: bool = False,
    ) -> None:
        """Poll until ``stop`` is set (or a signal arrives, with ``handle_signals``), or with
        ``until_done`` until nothing unfinished and nothing owed is left."""
        settings = self.settings
        if settings.webhook_port is not None and settings.webhook_secret is None:
            raise ConfigError(
                f"--webhook-port needs {WEBHOOK_SECRET_VARIABLE}: unsigned webhooks are refused"
            )
        serving = listeners(settings)
        check_exposure(settings, serving)
        follow_ups = self._follow_ups()
        ensure_open_files(self._open_files(len(serving), follow_ups))
        owner = daemon_id()
        database = DatabaseThread()
        declared = [provider.name for provider in self._providers]
        try:
            if until_done:
                await refuse_undeclared(database, self._database.polls, declared)
            await database.run(release_leases_of_dead_daemons, self._database.leases)
            async with AsyncExitStack() as stack:
                metrics = None
                if serving:
                    # prometheus-client is loaded by a daemon that serves metrics only
                    from tracker.daemon.metrics import Metrics

                    metrics = Metrics()
                poller = await self._lanes(stack, owner, database, follow_ups, metrics)
                await self._carry_on_pauses(poller, database)
                await poller.name_unknown_providers()
                self._running = poller
                workers: list[Worker] = []
                if metrics is not None:
                    workers.append(await self._serve(metrics, poller, serving))
                if settings.retain is not None:
                    from tracker.daemon.retention import Retention

                    workers.append(
                        Retention(
                            self._database.retention,
                            settings.retain,
                            database=database,
                            clock=self._clock,
                        )
                    )
                if settings.download_dir is not None:
                    directory = settings.download_dir
                    workers.append(await self._downloader(stack, owner, database, directory))
                if follow_ups.channels:
                    workers.append(await self._notifier(stack, owner, database, follow_ups))
                await run_daemon(
                    poller,
                    # Ticks as often as the shortest interval needs.
                    min(map(self._policy, self._providers), key=lambda policy: policy.interval),
                    until_done=until_done,
                    stop=stop,
                    handle_signals=handle_signals,
                    workers=workers,
                    owed=self._owed(database, follow_ups) if follow_ups else None,
                )
                # Give back whatever is still claimed: a restart or another daemon takes it.
                await database.run(self._database.leases.release_owners, [owner])
            if until_done:  # such a task may have been registered while it ran
                await refuse_undeclared(database, self._database.polls, declared)
        finally:
            self._running = None
            database.close()

    async def _carry_on_pauses(self, poller: Lanes, database: DatabaseThread) -> None:
        """A pause stored by an earlier run or another process still holds: said once, and
        waited out (the tasks' next_poll_at already hold it)."""
        now = self._clock.now()
        for pause in await database.run(self._database.reads.pauses, now):
            logger.warning(
                "no request before the pause ends: %d tasks wait %s",
                pause.waiting or 0,
                pause.said(now),
            )
            poller.restore(pause)

    async def poll_pass(self, all_unfinished: bool = False) -> PassSummary:
        """Poll every due unfinished task once (every unfinished one with ``all_unfinished``)."""
        ensure_open_files(OpenFiles(requests=self._requests_at_once()))
        database = DatabaseThread()
        try:
            await database.run(release_leases_of_dead_daemons, self._database.leases)
            async with AsyncExitStack() as stack:
                poller = await self._lanes(stack, daemon_id(), database)
                return await poller.poll_pass(all_unfinished)
        finally:
            database.close()

    async def download(
        self, task_id: str, variants: Iterable[str], directory: str
    ) -> list[Download]:
        """Fetch a completed task's files now, retrying until they expire; their rows. A file
        already saved in ``directory`` is kept; one a daemon is fetching is waited for."""
        follow_ups = self._database.follow_ups
        task = await asyncio.to_thread(self._database.reads.task, task_id)
        assert task is not None
        if task.provider not in {provider.name for provider in self._providers}:
            raise ConfigError(
                f"task {task_id!r} belongs to the provider {task.provider!r}, which the "
                "configuration does not declare (docs/providers.md)"
            )
        now = self._clock.now()
        expires_at = task.expires_at or now + ASSETS_LAST
        requested = list(dict.fromkeys(variants))
        saved = {
            row.variant
            for row in await asyncio.to_thread(follow_ups.downloads, task_id)
            if row.variant in requested and _saved_in(row, directory)
        }
        wanted = [NewDownload(v, expires_at) for v in requested if v not in saved]
        if wanted:
            await asyncio.to_thread(follow_ups.schedule_downloads, task_id, wanted, now)
        owner = daemon_id()
        database = DatabaseThread()
        try:
            async with AsyncExitStack() as stack:
                downloader = await self._downloader(stack, owner, database, directory, task_id)
                try:
                    while True:
                        rows = await database.run(follow_ups.downloads, task_id)
                        if not any(row.state == "pending" for row in rows):
                            return [row for row in rows if row.variant in requested]
                        await downloader.tick()
                        await asyncio.sleep(0.2)
                finally:
                    await downloader.drain(DRAIN_SECONDS)
                    await database.run(self._database.leases.release_owners, [owner])
        finally:
            database.close()

    def _open_files(self, listening: int, follow_ups: FollowUps) -> OpenFiles:
        from tracker.daemon.downloads import DOWNLOADS_AT_ONCE
        from tracker.daemon.notify import NOTIFICATIONS_AT_ONCE

        return OpenFiles(
            requests=self._requests_at_once(),
            listeners=listening,
            downloads=DOWNLOADS_AT_ONCE if self.settings.download_dir else 0,
            notifications=NOTIFICATIONS_AT_ONCE if follow_ups.channels else 0,
        )

    def _requests_at_once(self) -> int:
        """Every provider's requests in flight (docs/providers.md)."""
        default = self.settings.concurrency
        return sum(_own(provider.concurrency, default) for provider in self._providers)

    def _follow_ups(self) -> FollowUps:
        settings = self.settings
        variants = settings.download_variants if settings.download_dir else ()
        return FollowUps(variants=variants, channels=settings.notification_channels())

    def _owed(
        self, database: DatabaseThread, follow_ups: FollowUps
    ) -> Callable[[], Awaitable[bool]]:
        downloading = self.settings.download_dir is not None
        providers = [provider.name for provider in self._providers]

        def owed() -> Awaitable[bool]:
            return database.run(
                self._database.follow_ups.owed, downloading, follow_ups.channels, providers
            )

        return owed

    def _policy(self, provider: Provider) -> Policy:
        """A provider's polling rules: its own interval and timeout, else the daemon's."""
        settings = self.settings
        return Policy(
            interval=_own(provider.interval, settings.poll_interval),
            give_up_after=settings.give_up_after,
            request_timeout=_own(provider.request_timeout, settings.request_timeout),
        )

    async def _lanes(
        self,
        stack: AsyncExitStack,
        owner: str,
        database: DatabaseThread,
        follow_ups: FollowUps | None = None,
        observer: Metrics | None = None,
    ) -> Lanes:
        """A poller per provider, each on a client of its own with its own requests in flight
        (docs/providers.md)."""
        from tracker.http.client import VideoClient  # HTTP is loaded by the commands that poll

        settings = self.settings
        pollers = []
        for provider in self._providers:
            policy = self._policy(provider)
            concurrency = _own(provider.concurrency, settings.concurrency)
            client = VideoClient(
                provider.api_base,
                provider.token or settings.require_token(),
                timeout=policy.request_timeout,
                max_connections=concurrency,
                transport=self._transport,
                status_path=provider.status_path,
                proxies=_own(provider.proxy, settings.proxy),
            )
            await stack.enter_async_context(client)
            pollers.append(
                Poller(
                    self._database.polls,
                    client,
                    policy=policy,
                    owner=owner,
                    clock=self._clock,
                    database=database,
                    concurrency=concurrency,
                    follow_ups=follow_ups,
                    record_changes_only=settings.record == "changes",
                    observer=observer,
                    provider=provider.name,
                    provider_named=bool(settings.providers),
                )
            )
        return Lanes(pollers, database, self._database.polls.unfinished_providers)

    async def _downloader(
        self,
        stack: AsyncExitStack,
        owner: str,
        database: DatabaseThread,
        directory: str,
        task_id: str | None = None,
    ) -> Downloader:
        from tracker.daemon.downloads import Downloader
        from tracker.http.proxy_router import proxy_router
        from tracker.http.transfers import ContentClient

        Path(directory).mkdir(parents=True, exist_ok=True)
        sources = {}
        for provider in self._providers:  # a task's files come from the API that made it
            source = ContentClient(
                provider.api_base,
                provider.token or self.settings.require_token(),
                timeout=_own(provider.request_timeout, self.settings.request_timeout),
                transport=proxy_router(_own(provider.proxy, self.settings.proxy)),
            )
            stack.push_async_callback(source.aclose)
            sources[provider.name] = source
        return Downloader(
            self._database.follow_ups,
            sources,
            Path(directory),
            owner=owner,
            database=database,
            clock=self._clock,
            task_id=task_id,
        )

    async def _notifier(
        self, stack: AsyncExitStack, owner: str, database: DatabaseThread, follow_ups: FollowUps
    ) -> Notifier:
        from tracker.daemon.notify import Channels, Notifier
        from tracker.http.proxy_router import proxy_router
        from tracker.http.transfers import EventPoster
        from tracker.settings import child_environment

        settings = self.settings
        poster = None
        if settings.notify_url is not None:
            poster = EventPoster(timeout=NOTIFY_TIMEOUT, transport=proxy_router(settings.proxy))
            stack.push_async_callback(poster.aclose)
        environment = child_environment(
            also_hidden=[p.token_env for p in self._providers if p.token_env is not None]
        )
        environment["TRACKER_DATABASE_URL"] = settings.database_url
        channels = Channels(
            url=settings.notify_url,
            poster=poster,
            key=secret_key(settings.notify_secret.reveal()) if settings.notify_secret else None,
            command=settings.on_finish or (),
            command_timeout=settings.on_finish_timeout,
            command_environment=environment,
        )
        return Notifier(
            self._database.follow_ups,
            channels,
            owner=owner,
            database=database,
            clock=self._clock,
            channels_claimed=follow_ups.channels,
        )

    async def _serve(self, metrics: Metrics, poller: Lanes, serving: list[Listener]) -> Worker:
        """The HTTP app, from this daemon, stopped with the polling (a worker that drains it)."""
        from tracker.daemon.metrics import Probes
        from tracker.daemon.serving import ServingWorker, start_app

        stack = AsyncExitStack()
        probes = Probes(metrics, self._database.reads, self._clock, poller)
        self.ports = await start_app(
            stack,
            self.settings,
            self._database,
            self._clock,
            probes,
            wanted=serving,
            registered=self.wake,
            made_due=poller.poll_soon,
        )
        return ServingWorker(stack)


def _own(value: _T | None, daemons: _T) -> _T:
    """A provider's own setting, else the daemon's (docs/providers.md)."""
    return daemons if value is None else value


def _saved_in(download: Download, directory: str) -> bool:
    """Whether a download is done and its file is still there, in ``directory``."""
    if download.state != "done" or download.path is None:
        return False
    path = Path(download.path)
    return path.parent == Path(directory) and path.is_file()
