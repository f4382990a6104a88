"""Serving the HTTP app from a daemon (``tracker run --http-port``) or on its own
(``tracker serve``): which addresses, under which guard, started and stopped with the process.

Without a server token the app asks nobody for one, so it listens on the loopback address only:
asked to listen anywhere else, it refuses (docs/http-api.md, Security).

The web stack (FastAPI, uvicorn, Jinja2, pydantic) and prometheus-client are imported when
serving only: a daemon that serves nothing does not load them, which would cost it some 28 MB
of memory (docs/performance.md, Memory).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracker.core.clock import Clock
from tracker.daemon.lifecycle import DRAIN_SECONDS, Lifecycle
from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.store import Database

if TYPE_CHECKING:
    from tracker.daemon.metrics import Probes
    from tracker.web.server import Limits, WebServer

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


def prepare_app(
    settings: Settings,
    database: Database,
    clock: Clock,
    probes: Probes,
    *,
    wanted: list[Listener],
    made_due: Callable[[str], None] | None = None,
    limits: Limits | None = None,
) -> Serving:
    """The app over ``database``, on sockets bound now (a port in use is a ConfigError before
    anything starts), served once the lifecycle starts it."""
    from tracker.web.app import create_app
    from tracker.web.server import Limits, WebServer, bind
    from tracker.web.service import Service

    check_exposure(settings, wanted)
    service = Service(database, settings, clock, probes)
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
        drain_seconds=DRAIN_SECONDS,
    )
    return Serving(server, sockets, wanted, warn_open=not settings.server_tokens)


class Serving:
    """The HTTP service as a part of the lifecycle: listening once started, its requests under
    way finished (within the drain time) when stopped. ``ports``: the ports bound, by flag."""

    def __init__(
        self,
        server: WebServer,
        sockets: list[socket.socket],
        wanted: list[Listener],
        *,
        warn_open: bool,
    ) -> None:
        self._server = server
        self._sockets = sockets
        self._warn_open = warn_open
        self.ports = {
            listener.flag: int(sock.getsockname()[1])
            for listener, sock in zip(wanted, sockets, strict=True)
        }
        self._wanted = wanted

    async def start(self) -> None:
        await self._server.start(self._sockets)
        for listener in self._wanted:
            logger.info("HTTP service on http://%s:%d/", listener.host, self.ports[listener.flag])
        if self._warn_open:
            logger.warning(
                "no server token is set (TRACKER_SERVER_TOKENS): the HTTP service asks for none "
                "and listens on the loopback address only"
            )

    async def stop(self, timeout: float) -> None:
        await self._server.stop()


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

    probes = Probes(Metrics(), database.reads, clock)
    serving = prepare_app(
        settings, database, clock, probes, wanted=listeners(settings, SERVE_PORT), limits=limits
    )
    lifecycle = Lifecycle(database.wakeups, services=[serving])

    async def started() -> None:
        if on_ready is not None:
            on_ready(serving.ports)

    await lifecycle.serve(stop=stop, handle_signals=handle_signals, started=started)
