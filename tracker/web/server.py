"""Serving the app on uvicorn, inside an event loop that someone else owns (the daemon's, or
``tracker serve``'s), on sockets bound here.

uvicorn would install its own SIGINT/SIGTERM handlers, exit the process when it cannot bind, and
hold a client that never finishes its request for ever. So: the owner of the loop keeps the
signals; sockets are bound before uvicorn starts (a port in use is an OSError to report, not an
exit); and each connection runs the ``Guarded`` protocol, which times out a request not fully
received within ``REQUEST_SECONDS`` (408) and caps connections in all and per client address,
so that a few hundred idle or half-open connections cannot keep others out (docs/http-api.md,
Limits). Shutdown first tells the event streams to end (``stopping``), then lets requests under
way finish within the drain time its owner gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

REQUEST_SECONDS = 10.0
MAX_CONNECTIONS = 2048
MAX_CONNECTIONS_PER_CLIENT = 256
KEEPALIVE_SECONDS = 5
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class Limits:
    """What every connection of one server shares: the caps and the counts against them."""

    def __init__(
        self,
        request_seconds: float = REQUEST_SECONDS,
        total: int = MAX_CONNECTIONS,
        per_client: int = MAX_CONNECTIONS_PER_CLIENT,
    ) -> None:
        self.request_seconds = request_seconds
        self.total = total
        self.per_client = per_client
        self.open = 0
        self.by_client: Counter[str] = Counter()
        self.refused = 0
        self.timed_out = 0


def guarded(limits: Limits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, with a deadline on receiving each request and caps on
    connections."""

    class Guarded(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            client = self.client[0] if self.client else "?"
            if limits.open >= limits.total or limits.by_client[client] >= limits.per_client:
                limits.refused += 1
                transport.abort()
                return
            limits.open += 1
            limits.by_client[client] += 1
            self._counted = client
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted is not None:
                limits.open -= 1
                limits.by_client[self._counted] -= 1
                if not limits.by_client[self._counted]:
                    del limits.by_client[self._counted]
                self._counted = None
            super().connection_lost(exc)

        # A request must be received whole within the deadline, from its first byte (from the
        # connection for the first one); answers and event streams are not limited by it.
        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:
                self._arm()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(limits.request_seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            limits.timed_out += 1
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_TIMED_OUT)
            self.transport.close()

    return Guarded


class _Embedded(uvicorn.Server):
    """uvicorn that leaves the signals to the loop's owner and says when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; OSError (the port in use, an unknown address) as it comes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """The app on uvicorn, on one or more addresses, in the running loop."""

    def __init__(
        self,
        app: Any,
        stopping: asyncio.Event,
        *,
        forwarded_allow_ips: str,
        limits: Limits,
        drain_seconds: float,
    ) -> None:
        self._stopping = stopping
        self.limits = limits
        config = uvicorn.Config(
            app,
            http=guarded(limits),
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            timeout_keep_alive=KEEPALIVE_SECONDS,
            timeout_graceful_shutdown=max(1, round(drain_seconds)),
            server_header=False,
        )
        self._server = _Embedded(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, sockets: Sequence[socket.socket]) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=list(sockets)))
        ready = asyncio.ensure_future(self._server.ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self._task  # raises what stopped it before it listened

    async def stop(self) -> None:
        """End the event streams, then let the requests under way finish (within the drain
        time; uvicorn cancels what is left)."""
        self._stopping.set()
        self._server.should_exit = True
        if self._task is not None:
            await self._task
