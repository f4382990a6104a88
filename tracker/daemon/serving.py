"""Serving the HTTP app from a daemon (``tracker run --http-port``) or on its own
(``tracker serve``): which addresses, under which guard, started and stopped with the process.

Without a server token the app asks nobody for one, so it listens on the loopback address only:
asked to listen anywhere else, it refuses (docs/http-api.md, Security).

The web stack (FastAPI, uvicorn, Jinja2, pydantic) and prometheus-client are imported when
serving only: a daemon that serves nothing does not load them, which would cost it some 28 MB
of memory (docs/performance.md, Before and after the redesign).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracker.core.clock import Clock
from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.store import Database

if TYPE_CHECKING:
    from tracker.daemon.metrics import Probes
    from tracker.web.server import Limits

logger = logging.getLogger(__name__)

SERVE_PORT = 8080


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    flag: str  # the option that asked for it: the key of the ports bound
    # The settings of the address, for messages naming them as the user gave them.
    host_setting: str
    port_setting: str


def listeners(settings: Settings, default_port: int | None = None) -> list[Listener]:
    """The addresses to serve on: ``--http-port``, and the ports the metrics and the webhook
    receiver had before they joined the app (each serves the whole app)."""
    wanted = [
        ("http", _either(settings.http_port, default_port)),
        ("metrics", settings.metrics_port),
        ("webhook", settings.webhook_port),
    ]
    return [
        Listener(
            getattr(settings, f"{name}_host"),
            port,
            f"--{name}-port",
            host_setting=f"{name}_host",
            port_setting=f"{name}_port",
        )
        for name, port in wanted
        if port is not None
    ]


def _either(port: int | None, default: int | None) -> int | None:
    return port if port is not None else default


def check_exposure(settings: Settings, wanted: list[Listener]) -> None:
    if settings.server_tokens or not wanted:
        return
    from tracker.web.server import is_loopback

    for listener in wanted:
        if not is_loopback(listener.host):
            raise ConfigError(
                f"{settings.source(listener.host_setting)} {listener.host!r}: without a server "
                "token the HTTP service listens on the loopback address only; set "
                "TRACKER_SERVER_TOKENS (or TRACKER_SERVER_TOKENS_FILE) to listen elsewhere"
            )


async def start_app(
    stack: AsyncExitStack,
    settings: Settings,
    database: Database,
    clock: Clock,
    probes: Probes,
    *,
    wanted: list[Listener],
    registered: Callable[[], None] | None = None,
    made_due: Callable[[str], None] | None = None,
    limits: Limits | None = None,
) -> dict[str, int]:
    """Serve the app on ``wanted`` until ``stack`` closes; the ports bound, by flag."""
    from tracker.web.app import create_app
    from tracker.web.server import Limits, WebServer, bind
    from tracker.web.service import Service

    check_exposure(settings, wanted)
    service = Service(database, settings, clock, probes)
    if registered is not None:
        service.registered = registered
    if made_due is not None:
        service.made_due = made_due
    app = create_app(service)
    sockets = []
    try:
        for listener in wanted:
            try:
                sockets.append(bind(listener.host, listener.port))
            except OSError as exc:
                raise ConfigError(
                    f"{settings.source(listener.port_setting)} {listener.port}: cannot listen "
                    f"on {listener.host}: {exc.strerror or exc}"
                ) from None
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    server = WebServer(
        app,
        app.state.stopping,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        limits=limits or Limits(),
    )
    await server.start(sockets)
    stack.push_async_callback(server.stop)
    ports = {}
    for listener, sock in zip(wanted, sockets, strict=True):
        port = int(sock.getsockname()[1])
        ports[listener.flag] = port
        logger.info("HTTP service on http://%s:%d/", listener.host, port)
    if not settings.server_tokens:
        logger.warning(
            "no server token is set (TRACKER_SERVER_TOKENS): the HTTP service asks for none "
            "and listens on the loopback address only"
        )
    return ports


async def serve(
    settings: Settings,
    database: Database,
    clock: Clock,
    *,
    stop: asyncio.Event | None = None,
    handle_signals: bool = False,
    on_ready: Callable[[dict[str, int]], None] | None = None,
    limits: Limits | None = None,
) -> None:
    """``tracker serve``: the app alone, until ``stop`` or a signal."""
    from tracker.daemon.metrics import Metrics, Probes

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with AsyncExitStack() as stack:
            probes = Probes(Metrics(), database.reads, clock)
            ports = await start_app(
                stack,
                settings,
                database,
                clock,
                probes,
                wanted=listeners(settings, SERVE_PORT),
                limits=limits,
            )
            if on_ready is not None:
                on_ready(ports)
            await stop.wait()
            logger.info("stopping: finishing the requests under way")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


class ServingWorker:
    """The HTTP app as one of the daemon's workers: nothing to tick; stopped when they drain."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack

    @property
    def busy(self) -> bool:
        return False

    async def tick(self) -> None:
        pass

    async def drain(self, timeout: float) -> None:
        await self._stack.aclose()
