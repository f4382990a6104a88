"""The follow-up workers of a daemon, made from its settings: the downloader, with a client per
provider (a task's files come from the API that made it), and the notifier, with its channels
(docs/follow-ups.md)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from tracker.core.follow_ups import FollowUps
from tracker.core.secrets import secret_key
from tracker.daemon.downloads import Downloader
from tracker.daemon.notify import Channels, Notifier
from tracker.daemon.running import Crew
from tracker.settings import Settings, child_environment
from tracker.settings.providers import provider_setting
from tracker.store.follow_ups import FollowUpStore

NOTIFY_TIMEOUT = 10.0


async def downloader(
    settings: Settings,
    store: FollowUpStore,
    crew: Crew,
    stack: AsyncExitStack,
    directory: str | None = None,
    task_id: str | None = None,
) -> Downloader:
    """The downloader into ``directory`` (the settings' download directory unless given), of
    one task's files only with ``task_id``; its clients close with ``stack``."""
    from tracker.http.proxy_router import proxy_router
    from tracker.http.transfers import ContentClient

    folder = Path(directory or settings.download_dir or ".")
    folder.mkdir(parents=True, exist_ok=True)
    sources = {}
    for provider in settings.polled_providers():
        source = ContentClient(
            provider.api_base,
            provider.token or settings.require_token(),
            timeout=provider_setting(provider.request_timeout, settings.request_timeout),
            transport=proxy_router(provider_setting(provider.proxy, settings.proxy)),
        )
        stack.push_async_callback(source.aclose)
        sources[provider.name] = source
    return Downloader(store, sources, folder, crew, task_id=task_id)


async def notifier(
    settings: Settings,
    store: FollowUpStore,
    crew: Crew,
    stack: AsyncExitStack,
    follow_ups: FollowUps,
) -> Notifier:
    """The notifier on the channels the settings configure; its poster closes with ``stack``."""
    from tracker.http.proxy_router import proxy_router
    from tracker.http.transfers import EventPoster

    poster = None
    if settings.notify_url is not None:
        poster = EventPoster(timeout=NOTIFY_TIMEOUT, transport=proxy_router(settings.proxy))
        stack.push_async_callback(poster.aclose)
    providers = settings.polled_providers()
    hidden = [p.token_env for p in providers] + [p.webhook_secret_env for p in providers]
    environment = child_environment(also_hidden=[name for name in hidden if name is not None])
    environment["TRACKER_DATABASE_URL"] = settings.database_url
    channels = Channels(
        url=settings.notify_url,
        poster=poster,
        key=secret_key(settings.notify_secret.reveal()) if settings.notify_secret else None,
        command=settings.on_finish or (),
        command_timeout=settings.on_finish_timeout,
        command_environment=environment,
    )
    return Notifier(store, channels, crew, channels_claimed=follow_ups.channels)
