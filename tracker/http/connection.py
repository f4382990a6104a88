"""One connection of the HTTP/1.1 transport (``tracker.http.transport``): the exchange of a
request and its answer, parsed by httptools; a proxy's answer to CONNECT; and the errors of a
connection that could not be made or that a proxy refused."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast

import httptools
import httpx

from tracker.errors import LocalResourceError
from tracker.settings.proxies import Proxy

# As httpx's own HTTP/1.1 parser (h11): headers past this are a broken or hostile server.
MAX_HEADER_BYTES = 64 * 1024
AUTHENTICATION_REQUIRED = 407


# What an exchange gives: the status, the headers and the body.
Received = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """``seconds`` for the whole of an exchange, counted from ``started`` (``time.monotonic()``):
    each step waits for what is left, and an error names the whole."""

    seconds: float
    started: float

    def left(self) -> float:
        return max(0.0, self.seconds - (time.monotonic() - self.started))


class Exchange(asyncio.Protocol):
    """One connection, carrying one request at a time."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._answer: asyncio.Future[Received] | None = None
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
        # Asked once: on Python 3.11 every get_running_loop() is a getpid() system call.
        self._loop = asyncio.get_running_loop()

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
            shortage = LocalResourceError.of(exc, "the connection broke")
            self._fail(shortage or httpx.RemoteProtocolError(f"the connection broke: {exc}"))
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

    async def send(self, request: bytes, limit: TimeLimit | None = None) -> Received:
        """Send ``request`` and wait for the whole answer, within what is left of ``limit``
        (then ``httpx.ReadTimeout``, and the connection is closed): one timer on the loop,
        cheaper than an ``asyncio.timeout`` around the call, which every poll would pay for."""
        assert self._transport is not None and self._loop is not None
        answer: asyncio.Future[Received] = self._loop.create_future()
        self._answer = answer
        self._headers, self._header_bytes = [], 0
        self._body = bytearray()
        self._headers_done = self._delimited = self._interim = self.reusable = False
        self._transport.write(request)
        if limit is None:
            return await answer
        expiry = self._loop.call_later(limit.left(), self._expire, answer, limit.seconds)
        try:
            return await answer
        finally:
            expiry.cancel()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _complete(self) -> None:
        if self._answer is not None and not self._answer.done():
            status = self._parser.get_status_code()
            self._answer.set_result((status, self._headers, bytes(self._body)))

    def _expire(self, answer: asyncio.Future[Received], timeout: float) -> None:
        if answer is self._answer and not answer.done():
            self._fail(httpx.ReadTimeout(f"no complete response within {timeout:g}s"))

    def _fail(self, error: Exception) -> None:
        self.reusable = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()


class TunnelAnswer(asyncio.Protocol):
    """A proxy's answer to CONNECT, up to the end of its headers: its status and reason."""

    def __init__(self, proxy: Proxy) -> None:
        self.answer: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._proxy = proxy
        self._parser = httptools.HttpResponseParser(self)
        self._reason = b""
        self._size = 0

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._size += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fail("answered CONNECT with something unreadable")
        if self._size > MAX_HEADER_BYTES:
            self._fail(f"answered CONNECT with headers over {MAX_HEADER_BYTES} bytes")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("closed the connection without answering CONNECT")

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._reason = b""  # an interim answer: the real one follows
        elif not self.answer.done():
            reason = self._reason.decode("latin-1")
            self.answer.set_result((status, "".join(c for c in reason if c.isprintable())[:100]))

    def _fail(self, what: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(httpx.ProxyError(f"the proxy {self._proxy} {what}"))


def not_connected(exc: OSError, where: str, request: httpx.Request | None) -> Exception:
    """The error of a connection to ``where`` that could not be opened: this machine's
    shortage, or the peer's failure."""
    shortage = LocalResourceError.of(exc, f"no connection to {where} could be opened")
    return shortage or httpx.ConnectError(f"cannot connect to {where}: {exc}", request=request)


def proxy_refused(proxy: Proxy, answer: str, request: httpx.Request | None) -> httpx.ProxyError:
    """The error of a proxy that answered ``answer`` (``407 Proxy Authentication Required``)
    instead of serving the request."""
    return httpx.ProxyError(f"the proxy {proxy} refused ({answer})", request=request)
