"""A small HTTP/1.1 transport for httpx: keep-alive connections on asyncio, parsed by httptools.

Polling is one GET and one small JSON answer, thousands of times a second. httpx's own transport
and aiohttp both spend most of a poll's CPU on machinery a poll does not use
(docs/performance.md); this transport does only what a poll needs and hands httpx a plain
``httpx.Response``:

- HTTP/1.1 with keep-alive, over TCP or TLS (certificates verified, SNI sent);
- bodies by Content-Length, chunked, or until the connection closes (cleanly);
- interim 1xx answers skipped: the exchange ends with the final answer;
- at most ``max_body`` + 1 bytes of a body are kept: enough to tell that it is too large, and at
  most ``connection.MAX_HEADER_BYTES`` of headers;
- never a redirect, never a retry: one request is one exchange, and its failure is reported;
- GET and POST: a HEAD answer has no body, which the parser is not told;
- a time limit for the whole of ``exchange`` if the caller gives one (``httpx.PoolTimeout``,
  ``ConnectTimeout`` or ``ReadTimeout`` by where it ran out), or the caller's own
  (``asyncio.timeout``), which cancels the exchange;
- through an http:// proxy when ``proxies`` chooses one for the URL (docs/proxies.md): http
  requests in absolute form, https ones in a CONNECT tunnel, TLS verified against the API's
  name inside it; connections through a proxy are pooled apart from direct ones;
- at most ``max_connections`` sockets open, idle ones included: an idle connection to another
  origin is closed before a new one opens, so the daemon stays within the open files it
  counted at start (docs/scaling.md).

A connection this machine has no resources for (no descriptor, buffer, memory or port left) is
``tracker.errors.LocalResourceError``: nothing was sent, and the task is not to blame.
Other failures are httpx's exceptions: ``httpx.ConnectError`` when no connection could be made,
``httpx.RemoteProtocolError`` when the server closed it or answered something unreadable,
``httpx.ProxyError`` when the proxy refused (a 407 among others). A proxy is named as
``http://host:port`` only: its credentials appear in no message.
Cancellation (the caller's timeout) closes the connection instead of reusing it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque

import httpx

from tracker.http.connection import (
    AUTHENTICATION_REQUIRED,
    Exchange,
    Received,
    TimeLimit,
    TunnelAnswer,
    not_connected,
    proxy_refused,
)
from tracker.settings.proxies import Proxies, Proxy

# Idle connections are dropped after this long: servers close theirs after 5 s or more, and a
# request sent on a connection the server is closing fails.
KEEPALIVE_SECONDS = 4.0

_Origin = tuple[str, str, int]
# An origin and the proxy its requests go through (None: direct): what a connection serves.
_Route = tuple[str, str, int, Proxy | None]


class HTTP1Transport(httpx.AsyncBaseTransport):
    """An httpx transport over a pool of at most ``max_connections`` keep-alive connections."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_body: int,
        tls: ssl.SSLContext | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        self._max_body = max_body
        self._max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._busy = 0  # connections carrying a request, or being opened for one
        self._idle: dict[_Route, deque[Exchange]] = {}
        self._closed = False
        self._tls = tls  # default: httpx's, verifying against certifi's authorities
        # None without any proxy, the usual case: then no request pays for choosing one.
        self._proxies = proxies.require() if proxies else None
        self._routes: dict[_Origin, Proxy | None] = {}  # the few origins polled, chosen once

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lines = [name + b": " + value + b"\r\n" for name, value in request.headers.raw]
        status, headers, body = await self.exchange(
            request.method.encode(), request.url, b"".join(lines), request.content, request
        )
        return httpx.Response(status, headers=headers, content=body, request=request)

    async def exchange(
        self,
        method: bytes,
        url: httpx.URL,
        header_lines: bytes,
        content: bytes = b"",
        request: httpx.Request | None = None,
        timeout: float | None = None,
    ) -> Received:
        """One exchange without httpx's Request and Response: status, headers and body (at
        most ``max_body`` + 1 bytes). ``header_lines`` are ``Name: value\r\n`` lines, Host
        among them. The API client calls this directly: building and reading httpx's objects
        cost a poll as much as the rest of the exchange (docs/performance.md). ``request``, if
        there is one, goes into the errors raised. ``timeout`` is seconds for all of it: waiting
        for a connection of the pool, opening one, and the answer."""
        limit = None if timeout is None else TimeLimit(timeout, time.monotonic())
        scheme, host = url.scheme, url.host
        port = url.port or (443 if scheme == "https" else 80)
        proxy = None if self._proxies is None else self._route(scheme, host, port)
        route = (scheme, host, port, proxy)
        lines = [method, b" ", url.raw_path, b" HTTP/1.1\r\n"]
        if proxy is not None and scheme == "http":
            lines[2] = b"http://" + url.netloc + url.raw_path  # absolute form, for the proxy
            if proxy.authorization:
                lines += [b"Proxy-Authorization: ", proxy.authorization.encode(), b"\r\n"]
        lines += [header_lines, b"\r\n", content]
        await self._take_slot(limit, request)
        try:
            self._busy += 1
            try:
                exchange = self._reuse(route) or await self._open(route, url, request, limit)
                try:
                    status, headers, body = await exchange.send(b"".join(lines), limit)
                except BaseException:
                    exchange.close()  # cancelled or failed mid-exchange: never reused
                    raise
            finally:
                self._busy -= 1
            if exchange.reusable and not exchange.closed and not self._closed:
                exchange.idle_since = time.monotonic()
                self._idle.setdefault(route, deque()).append(exchange)
            else:
                exchange.close()
        finally:
            self._slots.release()
        if status == AUTHENTICATION_REQUIRED and proxy is not None:
            raise proxy_refused(proxy, "407 Proxy Authentication Required", request)
        return status, headers, body

    async def _take_slot(self, limit: TimeLimit | None, request: httpx.Request | None) -> None:
        """One of the ``max_connections`` slots, within ``limit``."""
        if limit is None or not self._slots.locked():
            await self._slots.acquire()  # at once when one is free: no timer to set
            return
        try:
            async with asyncio.timeout(limit.left()):
                await self._slots.acquire()
        except TimeoutError:
            message = f"no connection of the pool came free within {limit.seconds:g}s"
            raise httpx.PoolTimeout(message, request=request) from None

    async def _open(
        self, route: _Route, url: httpx.URL, request: httpx.Request | None, limit: TimeLimit | None
    ) -> Exchange:
        """A new connection for ``route``, made within ``limit``."""
        if limit is None:
            return await self._connect(route, url, request)
        try:
            async with asyncio.timeout(limit.left()):
                return await self._connect(route, url, request)
        except TimeoutError:
            message = f"no connection to {route[1]}:{route[2]} within {limit.seconds:g}s"
            raise httpx.ConnectTimeout(message, request=request) from None

    def _route(self, scheme: str, host: str, port: int) -> Proxy | None:
        origin = (scheme, host, port)
        if origin not in self._routes:
            assert self._proxies is not None
            self._routes[origin] = self._proxies.proxy_for(scheme, host, port)
        return self._routes[origin]

    def _reuse(self, route: _Route) -> Exchange | None:
        idle = self._idle.get(route)
        now = time.monotonic()
        while idle:
            exchange = idle.pop()
            if not exchange.closed and now - exchange.idle_since < KEEPALIVE_SECONDS:
                return exchange
            exchange.close()
        return None

    def _make_room(self) -> None:
        """Close the oldest idle connections (to other origins: this one has none idle) until
        a new one keeps the sockets open within ``max_connections``."""
        idle = sum(len(waiting) for waiting in self._idle.values())
        while idle and self._busy + idle > self._max_connections:
            oldest = min(
                (waiting for waiting in self._idle.values() if waiting),
                key=lambda waiting: waiting[0].idle_since,
            )
            oldest.popleft().close()
            idle -= 1

    async def _connect(
        self, route: _Route, url: httpx.URL, request: httpx.Request | None
    ) -> Exchange:
        scheme, host, port, proxy = route
        self._make_room()
        tls = None
        if scheme == "https":
            tls = self._tls = self._tls or httpx.create_ssl_context(verify=True)
        elif scheme != "http":
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        if proxy is not None and tls is not None:
            return await self._tunnel(url, port, proxy, tls, request)
        loop = asyncio.get_running_loop()
        try:
            _transport, exchange = await loop.create_connection(
                lambda: Exchange(self._max_body),
                proxy.host if proxy else host,
                proxy.port if proxy else port,
                ssl=tls,
                server_hostname=host if tls else None,
            )
        except (OSError, ssl.SSLError) as exc:
            where = f"the proxy {proxy}" if proxy else f"{host}:{port}"
            raise not_connected(exc, where, request) from exc
        return exchange

    async def _tunnel(
        self,
        url: httpx.URL,
        port: int,
        proxy: Proxy,
        tls: ssl.SSLContext,
        request: httpx.Request | None,
    ) -> Exchange:
        """A connection to ``host:port`` through the proxy's CONNECT tunnel, TLS inside it
        verified against ``host``: the proxy sees only where the request goes."""
        host = url.host
        loop = asyncio.get_running_loop()
        try:
            raw, opening = await loop.create_connection(
                lambda: TunnelAnswer(proxy), proxy.host, proxy.port
            )
        except OSError as exc:
            raise not_connected(exc, f"the proxy {proxy}", request) from exc
        try:
            name = url.raw_host  # the A-label of an internationalised name
            authority = (b"[%s]" % name if b":" in name else name) + b":%d" % port
            lines = [b"CONNECT ", authority, b" HTTP/1.1\r\nHost: ", authority, b"\r\n"]
            if proxy.authorization:
                lines += [b"Proxy-Authorization: ", proxy.authorization.encode(), b"\r\n"]
            raw.write(b"".join([*lines, b"\r\n"]))
            try:
                status, reason = await opening.answer
            except httpx.ProxyError as exc:
                raise httpx.ProxyError(str(exc), request=request) from None
            if not 200 <= status < 300:
                raise proxy_refused(proxy, f"{status} {reason}".strip(), request)
            exchange = Exchange(self._max_body)
            try:
                secure = await loop.start_tls(raw, exchange, tls, server_hostname=host)
            except (OSError, ssl.SSLError) as exc:
                raise httpx.ConnectError(
                    f"TLS with {host}:{port} through the proxy {proxy}: {exc}", request=request
                ) from exc
            if secure is None:  # the connection was closed during the handshake
                raise httpx.ConnectError(
                    f"TLS with {host}:{port} through the proxy {proxy}: the connection closed",
                    request=request,
                )
            exchange.connection_made(secure)
            return exchange
        except BaseException:
            raw.close()
            raise

    async def aclose(self) -> None:
        self._closed = True  # connections of requests still under way are closed when they end
        for idle in self._idle.values():
            for exchange in idle:
                exchange.close()
        self._idle.clear()
