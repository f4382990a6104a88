"""A small forwarding HTTP proxy on 127.0.0.1 for the tests, served from a thread of its own.

It opens CONNECT tunnels and forwards absolute-form requests (keeping the client's connection
alive when the answer has a Content-Length), can require Basic credentials (a 407 otherwise),
and records what went through it so tests can tell a request took the proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection"}


def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on: a proxy that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _head(raw: bytes) -> tuple[str, dict[str, str]]:
    first, *lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return first, headers


class ForwardProxy:
    """``with ForwardProxy() as url:`` a proxy at ``url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self._required = None
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._required = f"Basic {token}"
        self.connections = 0  # client connections accepted
        self.tunnels: list[str] = []  # CONNECT targets
        self.forwarded: list[tuple[str, str]] = []  # absolute-form requests: method, URL
        self.refused = 0  # 407 answers
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self.url

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        server.close()
        for handler in list(self._handlers):
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._handlers.discard(handler)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; whether the connection carries on."""
        try:
            request_line, headers = _head(await reader.readuntil(b"\r\n\r\n"))
        except asyncio.IncompleteReadError:
            return False
        method, target, _version = request_line.split(" ", 2)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if self._required is not None and headers.get("proxy-authorization") != self._required:
            self.refused += 1
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="tests"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return False
        if method == "CONNECT":
            self.tunnels.append(target)
            host, _, port = target.rpartition(":")
            try:
                upstream = await asyncio.open_connection(host.strip("[]"), int(port))
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return False
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, upstream[1]), _pipe(upstream[0], writer))
            return False
        self.forwarded.append((method, target))
        return await self._forward(method, target, headers, body, writer)

    async def _forward(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        parts = urlsplit(target)
        assert parts.scheme == "http" and parts.hostname, f"not absolute form: {target}"
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            lines = [f"{method} {path} HTTP/1.1", "Connection: close"]
            lines += [f"{n}: {v}" for n, v in headers.items() if n not in _HOP_BY_HOP]
            up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status_line, answer = _head(await up_reader.readuntil(b"\r\n\r\n"))
            kept = [f"{n}: {v}" for n, v in answer.items() if n not in _HOP_BY_HOP]
            length = answer.get("content-length")
            if length is None:  # to the end of the upstream connection, then this one
                head = "\r\n".join([status_line, *kept, "Connection: close"]) + "\r\n\r\n"
                writer.write(head.encode("latin-1") + await up_reader.read())
                await writer.drain()
                return False
            head = "\r\n".join([status_line, *kept]) + "\r\n\r\n"
            writer.write(head.encode("latin-1"))
            try:
                writer.write(await up_reader.readexactly(int(length)))
            except asyncio.IncompleteReadError as cut:
                writer.write(cut.partial)  # a transfer broken upstream stays broken here
                await writer.drain()
                return False
            await writer.drain()
            return True
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()
