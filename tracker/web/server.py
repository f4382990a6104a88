"""Serving the app on uvicorn, inside an event loop that someone else owns (the daemon's, or
``tracker serve``'s), on sockets bound here.

uvicorn would install its own SIGINT/SIGTERM handlers, exit the process when it cannot bind, and
hold a client that never finishes its request for ever. So: the owner of the loop keeps the
signals; sockets are bound before uvicorn starts (a port in use is an OSError to report, not an
exit); and each connection is guarded (``Guard``): a request not fully received within
``REQUEST_SECONDS``, its headers or its body, is answered 408, and connections are capped in all
and per client address, so that a few hundred idle or half-open connections cannot keep others
out (docs/http-api.md, Limits). Shutdown first tells the event streams to end (``stopping``),
then lets requests under way finish within the drain time its owner gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, cast

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

REQUEST_SECONDS = 10.0
MAX_CONNECTIONS = 2048
MAX_CONNECTIONS_PER_CLIENT = 256
KEEPALIVE_SECONDS = 5
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_INTERIM = b"HTTP/1.1 1"  # a 100 Continue: not yet the answer


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


class Guard(asyncio.Protocol):
    """A connection's guard in front of the protocol that serves it (uvicorn's), by
    composition: it counts the connection against the caps (refused, it never reaches the
    protocol), reads the same bytes with a parser of its own to see where each request begins
    and ends, hands every byte and event on unchanged, and sees what the protocol writes through
    the transport it hands it. A request must be received whole within the deadline, from its
    first byte (from the connection for the first one); answers and event streams are not
    limited by it. Between the guard and uvicorn's protocol there are only asyncio's Protocol
    and Transport interfaces: none of the protocol's attributes or callbacks are used, so
    uvicorn's version is not tied to this code."""

    def __init__(self, limits: Limits, inner: asyncio.Protocol) -> None:
        self._limits = limits
        self._inner = inner
        framing = httptools.HttpRequestParser(_Framing(self))
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3, as uvicorn does
            framing.set_dangerous_leniencies(lenient_data_after_close=True)
        self._framing: httptools.HttpRequestParser | None = framing
        self._transport: asyncio.Transport | None = None
        self._client: str | None = None  # counted against the caps while set
        self._deadline: asyncio.TimerHandle | None = None
        self.answering = False  # the protocol wrote an answer since the request began
        self.cut = False  # answered 408 here: nothing the protocol writes goes out

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is one, not by inheritance
        limits = self._limits
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple | list) and peer else "?"
        if limits.open >= limits.total or limits.by_client[client] >= limits.per_client:
            limits.refused += 1
            transport.abort()
            return
        limits.open += 1
        limits.by_client[client] += 1
        self._client = client
        self._transport = transport
        self._inner.connection_made(_Watched(transport, self))
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return
        if self._framing is not None:
            try:
                self._framing.feed_data(data)
            except httptools.HttpParserUpgrade:
                pass  # refused (the app takes no upgrade) and answered as a plain request
            except httptools.HttpParserError:
                # The protocol answers 400 and closes; nothing more to time.
                self._framing = None
                self._disarm()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._client is not None:
            limits = self._limits
            limits.open -= 1
            limits.by_client[self._client] -= 1
            if not limits.by_client[self._client]:
                del limits.by_client[self._client]
            self._client = None
        if self._transport is not None:
            self._transport = None
            self._inner.connection_lost(exc)

    def begun(self) -> None:
        self.answering = False
        if self._deadline is None:
            self._arm()

    def received(self) -> None:
        self._disarm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._limits.request_seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._limits.timed_out += 1
        if not self.answering:
            transport.write(_TIMED_OUT)
        # The protocol learns of it as of a client gone (connection_lost): the app reading the
        # body is told the client left, and what it would answer goes nowhere.
        self.cut = True
        transport.close()


class _Framing:
    """The guard's parser callbacks: where a request begins and where it has all arrived."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    def on_message_begin(self) -> None:
        self._guard.begun()

    def on_message_complete(self) -> None:
        self._guard.received()


class _Watched(asyncio.Transport):
    """The connection's transport as the guarded protocol sees it: the same, but what it writes
    is seen by the guard, and dropped once the guard has cut the connection."""

    def __init__(self, transport: asyncio.Transport, guard: Guard) -> None:
        super().__init__()
        self._transport = transport
        self._guard = guard

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._guard.cut:
            return
        if bytes(data[: len(_INTERIM)]) != _INTERIM:
            self._guard.answering = True
        self._transport.write(data)

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


def guarded(limits: Limits) -> type[asyncio.Protocol]:
    """The protocol uvicorn is given (its public ``http=`` setting): uvicorn's own httptools
    protocol, made with whatever uvicorn passes it, behind a Guard sharing ``limits``."""

    class Guarded(Guard):
        def __init__(self, **protocol_arguments: Any) -> None:
            super().__init__(limits, HttpToolsProtocol(**protocol_arguments))

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
            ws="none",  # no route takes an upgrade: the guard sees every byte of a connection
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
