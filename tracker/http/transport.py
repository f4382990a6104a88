"""A small HTTP/1.1 transport for httpx: keep-alive connections on asyncio, parsed by httptools.

Polling is one GET and one small JSON answer, thousands of times a second. httpx's own transport
and aiohttp both spend most of a poll's CPU on machinery a poll does not use (README,
Performance); this transport does only what a poll needs and hands httpx a plain
``httpx.Response``:

- HTTP/1.1 with keep-alive, over TCP or TLS (certificates verified, SNI sent);
- bodies by Content-Length, chunked, or until the connection closes (cleanly);
- interim 1xx answers skipped: the exchange ends with the final answer;
- at most ``max_body`` + 1 bytes of a body are kept: enough to tell that it is too large, and at
  most MAX_HEADER_BYTES of headers;
- never a redirect, never a retry: one request is one exchange, and its failure is reported;
- GET and POST: a HEAD answer has no body, which the parser is not told; and no time limits of
  its own: the caller's (``asyncio.timeout``) cancels the exchange.

Failures are httpx's exceptions: ``httpx.ConnectError`` when no connection could be made,
``httpx.RemoteProtocolError`` when the server closed it or answered something unreadable.
Cancellation (the caller's timeout) closes the connection instead of reusing it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import cast

import httptools
import httpx

# Idle connections are dropped after this long: servers close theirs after 5 s or more, and a
# request sent on a connection the server is closing fails.
KEEPALIVE_SECONDS = 4.0
# As httpx's own HTTP/1.1 parser (h11): headers past this are a broken or hostile server.
MAX_HEADER_BYTES = 64 * 1024

_Origin = tuple[str, str, int]


class _Exchange(asyncio.Protocol):
    """One connection, carrying one request at a time."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._body = bytearray()
        self._headers_done = False
        self._interim = False  # a 1xx answer (100 Continue, 103 Early Hints) before the real one
        self._delimited = False  # the body has a length or chunks, rather than running to EOF
        self.reusable = False
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"unreadable answer: {exc}"))
        if not self._headers_done:
            # Counted here, not per header: the parser holds a header until it ends.
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._fail(httpx.RemoteProtocolError(f"headers over {MAX_HEADER_BYTES} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is None or self._answer.done():
            return
        if self._headers_done and not self._delimited and exc is None:
            self._complete()  # a body that runs to the end of the connection
        elif exc is not None:
            self._fail(httpx.RemoteProtocolError(f"the connection broke: {exc}"))
        else:
            self._fail(httpx.RemoteProtocolError("the server closed the connection"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:
            self._interim = True
            return
        self._headers_done = True
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length" or (
                lowered == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                self._delimited = True

    def on_body(self, body: bytes) -> None:
        if self.closed:
            return
        self._body += body[: self._max_body + 1 - len(self._body)]
        if len(self._body) > self._max_body:
            self.reusable = False
            self._complete()  # enough to say it is too large; the rest is not read
            self.close()

    def on_message_complete(self) -> None:
        if self._interim:
            # Not the answer: the final one follows on the same connection.
            self._interim = False
            self._headers, self._header_bytes = [], 0
            return
        self.reusable = self._parser.should_keep_alive()
        self._complete()

    # the exchange

    async def send(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self._transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._headers, self._header_bytes = [], 0
        self._body = bytearray()
        self._headers_done = self._delimited = self._interim = self.reusable = False
        self._transport.write(request)
        return await self._answer

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _complete(self) -> None:
        if self._answer is not None and not self._answer.done():
            status = self._parser.get_status_code()
            self._answer.set_result((status, self._headers, bytes(self._body)))

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()


class HTTP1Transport(httpx.AsyncBaseTransport):
    """An httpx transport over a pool of at most ``max_connections`` keep-alive connections."""

    def __init__(
        self, *, max_connections: int, max_body: int, tls: ssl.SSLContext | None = None
    ) -> None:
        self._max_body = max_body
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[_Origin, deque[_Exchange]] = {}
        self._closed = False
        self._tls = tls  # default: httpx's, verifying against certifi's authorities

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        lines = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            lines += [name, b": ", value, b"\r\n"]
        lines.append(b"\r\n")
        async with self._slots:
            exchange = self._reuse(origin) or await self._connect(origin, request)
            try:
                status, headers, body = await exchange.send(b"".join(lines) + request.content)
            except BaseException:
                exchange.close()  # cancelled or failed mid-exchange: never reused
                raise
            if exchange.reusable and not exchange.closed and not self._closed:
                exchange.idle_since = time.monotonic()
                self._idle.setdefault(origin, deque()).append(exchange)
            else:
                exchange.close()
        return httpx.Response(status, headers=headers, content=body, request=request)

    def _reuse(self, origin: _Origin) -> _Exchange | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            exchange = idle.pop()
            if not exchange.closed and now - exchange.idle_since < KEEPALIVE_SECONDS:
                return exchange
            exchange.close()
        return None

    async def _connect(self, origin: _Origin, request: httpx.Request) -> _Exchange:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            tls = self._tls = self._tls or httpx.create_ssl_context(verify=True)
        elif scheme != "http":
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        loop = asyncio.get_running_loop()
        try:
            _transport, exchange = await loop.create_connection(
                lambda: _Exchange(self._max_body),
                host,
                port,
                ssl=tls,
                server_hostname=host if tls else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(
                f"cannot connect to {host}:{port}: {exc}", request=request
            ) from exc
        return exchange

    async def aclose(self) -> None:
        self._closed = True  # connections of requests still under way are closed when they end
        for idle in self._idle.values():
            for exchange in idle:
                exchange.close()
        self._idle.clear()
