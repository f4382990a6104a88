"""A daemon wired from its settings: the poller on the API client, the workers beside it
(downloads, notifications, retention, metrics), the servers it listens on; and the one-off
passes the commands ``poll`` and ``download`` make with the same parts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.core.clock import Clock
from tracker.core.follow_ups import Download, FollowUps, NewDownload
from tracker.core.models import PassSummary
from tracker.core.video import ASSETS_LAST
from tracker.daemon import follow_up_workers
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.descriptors import OpenFiles, ensure_open_files
from tracker.daemon.lanes import Lanes
from tracker.daemon.leases import daemon_id, release_leases_of_dead_daemons
from tracker.daemon.lifecycle import DRAIN_SECONDS, Lifecycle, Loop, Service
from tracker.daemon.observing import Unobserved
from tracker.daemon.poller import Lane, Poller
from tracker.daemon.presence import Presence
from tracker.daemon.rules import Policy
from tracker.daemon.running import Crew
from tracker.daemon.scheduler import Job, Periodic, sweep_seconds
from tracker.daemon.serving import Listener, check_exposure, listeners
from tracker.daemon.until_done import refuse_undeclared
from tracker.daemon.writes import DatabaseHealth, WriteBuffer
from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.settings.options import WEBHOOK_SECRET_VARIABLE
from tracker.settings.providers import Provider, provider_setting
from tracker.store import Database
from tracker.store.engine import reason

if TYPE_CHECKING:
    import httpx

    from tracker.daemon.metrics import Metrics
    from tracker.daemon.serving import Serving

logger = logging.getLogger(__name__)
SUMMARY_SECONDS = 60.0
# The counts kept as they change are folded this often (tracker/store/tallies.py).
FOLD_SECONDS = 60.0
# The snapshot partitions of the days ahead are looked after this often (PostgreSQL).
DAYS_SECONDS = 3600.0


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

    async def run(
        self,
        *,
        until_done: bool = False,
        only: Collection[str] | None = None,
        stop: asyncio.Event | None = None,
        handle_signals: bool = False,
    ) -> None:
        """Poll until ``stop`` is set (or a signal arrives, with ``handle_signals``), or with
        ``until_done`` until nothing unfinished and nothing owed is left (of the tasks ``only``
        names, if given)."""
        settings = self.settings
        if settings.webhook_port is not None and not settings.webhook_secrets():
            raise ConfigError(
                f"--webhook-port needs {WEBHOOK_SECRET_VARIABLE} (or a provider's "
                "webhook_secret_env): unsigned webhooks are refused"
            )
        serving = listeners(settings)
        check_exposure(settings, serving)
        follow_ups = self._follow_ups()
        ensure_open_files(self._open_files(len(serving), follow_ups))
        crew = self._crew()
        declared = [provider.name for provider in self._providers]
        try:
            if until_done:
                await refuse_undeclared(crew.database, self._database.polls, declared, only)
            await crew.database.run(release_leases_of_dead_daemons, self._database.leases)
            async with AsyncExitStack() as stack:
                done = self._done(crew.database, follow_ups, only) if until_done else None
                lifecycle, lanes = await self._lifecycle(stack, crew, follow_ups, serving, done)
                await lifecycle.serve(stop=stop, handle_signals=handle_signals)
                logger.info("stopped after %d polls", lanes.polls)
                await self._give_back(crew)
            if until_done:  # such a task may have been registered while it ran
                await refuse_undeclared(crew.database, self._database.polls, declared, only)
        finally:
            crew.close()

    async def _give_back(self, crew: Crew) -> None:
        """Give back whatever is still claimed, so that a restart or another daemon takes it
        at once. A database that refuses (a full disk) does not make the stop a failure:
        the leases end by themselves."""
        try:
            # Behind any claim still running: one a forced stop cancelled must not lease tasks
            # after they were given back.
            await crew.claims_database.run(self._database.leases.release_owners, [crew.owner])
        except Exception as exc:
            logger.error(
                "giving the claimed tasks back failed (%s); they are polled again once their "
                "leases end, within the lease time",
                reason(exc),
            )

    def _crew(self) -> Crew:
        return Crew.of(daemon_id(), self._database, self._clock)

    async def _lifecycle(
        self,
        stack: AsyncExitStack,
        crew: Crew,
        follow_ups: FollowUps,
        serving: list[Listener],
        done: Callable[[], Awaitable[bool]] | None,
    ) -> tuple[Lifecycle, Lanes]:
        """The daemon's parts: the polling, the follow-up workers, the HTTP service and the
        periodic jobs, under one lifecycle."""
        settings = self.settings
        metrics = None
        if serving:
            # prometheus-client is loaded by a daemon that serves metrics only
            from tracker.daemon.metrics import Metrics

            metrics = Metrics()
        lanes = await self._lanes(stack, crew, follow_ups, metrics)
        await self._carry_on_pauses(lanes, crew.database)
        await lanes.name_unknown_providers()
        loops: list[Loop] = [lanes]
        services: list[Service] = []
        if metrics is not None:
            services.append(self._serving(metrics, lanes, serving))
        if settings.download_dir is not None:
            loops.append(
                await follow_up_workers.downloader(settings, self._database.follow_ups, crew, stack)
            )
        if follow_ups.channels:
            loops.append(
                await follow_up_workers.notifier(
                    settings, self._database.follow_ups, crew, stack, follow_ups
                )
            )
        presence = Presence(self._database.daemons, lanes, crew)
        services += [presence, Periodic([*self._jobs(lanes, crew), presence.job()])]
        logger.info("polling every %gs", self._fastest().interval)
        return Lifecycle(crew.wakeups, loops=loops, services=services, done=done), lanes

    def _jobs(self, lanes: Lanes, crew: Crew) -> list[Job]:
        last_summary = [0]

        async def summary() -> None:
            polls = lanes.polls - last_summary[0]
            last_summary[0] = lanes.polls
            logger.info(
                "%d polls in the last %gs; %d tasks finished since start",
                polls,
                SUMMARY_SECONDS,
                lanes.finished,
            )

        async def fold() -> None:
            await crew.database.run(self._database.tallies.fold)

        async def days_ahead() -> None:
            try:
                await crew.database.run(self._database.partitions.make_days_ahead, crew.clock.now())
            except Exception as exc:  # tried again within the hour; the default takes the rows
                logger.warning("making the next days' snapshot partitions failed: %s", reason(exc))

        jobs = [
            Job("sweep", sweep_seconds(self._fastest()), lanes.sweep),
            Job("summary", SUMMARY_SECONDS, summary, first_after=SUMMARY_SECONDS),
            Job("fold", FOLD_SECONDS, fold, first_after=FOLD_SECONDS),
            Job("days", DAYS_SECONDS, days_ahead),
        ]
        if self.settings.retain is not None:
            from tracker.daemon.retention import Retention

            retention = Retention(self._database.retention, self.settings.retain, crew)
            jobs.append(Job("retention", retention.every, retention.prune, retention.first_after))
        return jobs

    def _fastest(self) -> Policy:
        """The policy of the provider polled most often: the daemon ticks as it needs."""
        return min(map(self._policy, self._providers), key=lambda policy: policy.interval)

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
        crew = self._crew()
        try:
            await crew.database.run(release_leases_of_dead_daemons, self._database.leases)
            async with AsyncExitStack() as stack:
                lanes = await self._lanes(stack, crew)
                return await lanes.poll_pass(all_unfinished)
        finally:
            crew.close()

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
        crew = self._crew()
        try:
            async with AsyncExitStack() as stack:
                downloader = await follow_up_workers.downloader(
                    self.settings, follow_ups, crew, stack, directory, task_id
                )
                try:
                    while True:
                        rows = await crew.database.run(follow_ups.downloads, task_id)
                        if not any(row.state == "pending" for row in rows):
                            return [row for row in rows if row.variant in requested]
                        await downloader.tick()
                        await asyncio.sleep(0.2)
                finally:
                    await downloader.drain(DRAIN_SECONDS)
                    await self._give_back(crew)
        finally:
            crew.close()

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
        return sum(provider_setting(provider.concurrency, default) for provider in self._providers)

    def _follow_ups(self) -> FollowUps:
        settings = self.settings
        variants = settings.download_variants if settings.download_dir else ()
        return FollowUps(variants=variants, channels=settings.notification_channels())

    def _done(
        self, database: DatabaseThread, follow_ups: FollowUps, only: Collection[str] | None
    ) -> Callable[[], Awaitable[bool]]:
        """Whether ``run --until-done`` is done: no task of a polled provider unfinished (of
        ``only``, if given), no download or notification this daemon would settle still
        owed (for them)."""
        downloading = self.settings.download_dir is not None
        providers = [provider.name for provider in self._providers]
        store = self._database

        async def done() -> bool:
            if await database.run(store.polls.has_unfinished, providers, only):
                return False
            if not follow_ups:
                return True
            return not await database.run(
                store.follow_ups.owed, downloading, follow_ups.channels, providers, only
            )

        return done

    def _policy(self, provider: Provider) -> Policy:
        """A provider's polling rules: its own interval and timeout, else the daemon's."""
        settings = self.settings
        return Policy(
            interval=provider_setting(provider.interval, settings.poll_interval),
            give_up_after=settings.give_up_after,
            request_timeout=provider_setting(provider.request_timeout, settings.request_timeout),
        )

    async def _lanes(
        self,
        stack: AsyncExitStack,
        crew: Crew,
        follow_ups: FollowUps | None = None,
        observer: Metrics | None = None,
    ) -> Lanes:
        """A poller per provider, each on a client of its own with its own requests in flight
        (docs/providers.md)."""
        from tracker.http.client import VideoClient  # HTTP is loaded by the commands that poll

        settings = self.settings
        # One buffer for every lane: a tick writes every provider's results in one transaction.
        health = DatabaseHealth(crew.clock)
        writes = WriteBuffer(
            self._database.polls, crew.database, crew.owner, health, observer or Unobserved()
        )
        pollers = []
        for provider in self._providers:
            policy = self._policy(provider)
            concurrency = provider_setting(provider.concurrency, settings.concurrency)
            client = VideoClient(
                provider.api_base,
                provider.token or settings.require_token(),
                timeout=policy.request_timeout,
                max_connections=concurrency,
                transport=self._transport,
                status_path=provider.status_path,
                proxies=provider_setting(provider.proxy, settings.proxy),
            )
            await stack.enter_async_context(client)
            lane = Lane(
                policy,
                provider=provider.name,
                concurrency=concurrency,
                record_changes_only=settings.record == "changes",
                provider_named=bool(settings.providers),
            )
            pollers.append(
                Poller(
                    self._database.polls,
                    client,
                    lane,
                    crew,
                    follow_ups=follow_ups,
                    observer=observer,
                    writes=writes,
                )
            )
        unfinished = self._database.polls.unfinished_providers
        return Lanes(pollers, crew, unfinished, self._fastest())

    def _serving(self, metrics: Metrics, lanes: Lanes, serving: list[Listener]) -> Serving:
        """The HTTP app, from this daemon: its health is the polling's."""
        from tracker.daemon.metrics import Probes
        from tracker.daemon.serving import prepare_app

        probes = Probes(metrics, self._database.reads, self._clock, lanes)
        web = prepare_app(
            self.settings,
            self._database,
            self._clock,
            probes,
            wanted=serving,
            made_due=lanes.poll_soon,
        )
        self.ports = web.ports
        return web


def _saved_in(download: Download, directory: str) -> bool:
    """Whether a download is done and its file is still there, in ``directory``."""
    if download.state != "done" or download.path is None:
        return False
    path = Path(download.path)
    return path.parent == Path(directory) and path.is_file()
