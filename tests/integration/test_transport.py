"""The HTTP/1.1 transport against real sockets: framing, keep-alive, failures, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import trustme

from tracker.core.models import FetchResult
from tracker.core.secrets import Secret
from tracker.errors import LocalResourceError
from tracker.http.client import VideoClient
from tracker.http.transport import HTTP1Transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def answer_with(*responses: bytes, close: bool = False) -> tuple[Handler, list[bytes]]:
    """A server handler that answers successive requests with ``responses``."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for response in responses:
                seen.append(await read_request(reader))
                writer.write(response)
                await writer.drain()
            if close:
                writer.close()
                return
            await reader.read()  # keep the connection until the client closes it
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle, seen


def run(
    handler: Handler,
    scenario: Callable[[str, HTTP1Transport], Awaitable[None]],
    *,
    max_body: int = 1 << 20,
    tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
) -> None:
    async def go() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls[0] if tls else None)
        port = server.sockets[0].getsockname()[1]
        transport = HTTP1Transport(
            max_connections=4, max_body=max_body, tls=tls[1] if tls else None
        )
        scheme = "https" if tls else "http"
        try:
            await scenario(f"{scheme}://127.0.0.1:{port}", transport)
        finally:
            await transport.aclose()
            server.close()

    asyncio.run(go())


async def get(transport: HTTP1Transport, url: str) -> httpx.Response:
    return await transport.handle_async_request(
        httpx.Request("GET", url + "/v1/videos/x", headers={"Authorization": "Bearer t"})
    )


def test_a_content_length_answer_and_the_request_it_answers() -> None:
    """The request line, Host and headers go out as given; the body comes back whole."""
    handler, seen = answer_with(
        b'HTTP/1.1 200 OK\r\nContent-Length: 15\r\nX-Thing: 1\r\n\r\n{"status":"ok"}'
    )

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        response = await get(transport, url)
        assert (response.status_code, response.content) == (200, b'{"status":"ok"}')
        assert response.headers["x-thing"] == "1"

    run(handler, scenario)
    assert seen[0].startswith(b"GET /v1/videos/x HTTP/1.1\r\n")
    assert b"authorization: Bearer t" in seen[0].lower().replace(b"bearer", b"Bearer")


def test_chunked_and_close_delimited_bodies_are_read_whole() -> None:
    """Chunked transfer coding and bodies that run until the server closes both work."""
    chunked, _ = answer_with(
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n3\r\n12}\r\n0\r\n\r\n'
    )
    until_close, _ = answer_with(b'HTTP/1.0 200 OK\r\n\r\n{"b": 2}', close=True)

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        response = await get(transport, url)
        assert response.content in (b'{"a":12}', b'{"b": 2}')

    run(chunked, scenario)
    run(until_close, scenario)


def test_kept_alive_connections_are_reused() -> None:
    """Two requests in a row travel on one connection."""
    handler, seen = answer_with(*[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"] * 2)

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        await get(transport, url)
        await get(transport, url)

    run(handler, scenario)
    assert len(seen) == 2  # both on the one connection the handler served


def test_a_body_past_the_limit_is_cut_and_the_connection_dropped() -> None:
    """Only max_body + 1 bytes are kept; the rest is never read."""
    handler, _ = answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000)

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        response = await get(transport, url)
        assert len(response.content) == 1001

    run(handler, scenario, max_body=1000)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "closed the connection"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "closed the connection"),
        (b"NONSENSE\r\n\r\n", "unreadable answer"),
    ],
)
def test_broken_answers_are_remote_protocol_errors(answer: bytes, message: str) -> None:
    """A server that hangs up early or answers garbage raises httpx.RemoteProtocolError."""
    handler, _ = answer_with(answer, close=True)

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await get(transport, url)

    run(handler, scenario)


def test_interim_answers_are_skipped_and_never_taken_for_the_next_request() -> None:
    """A 103 Early Hints before the answer: the request gets its 200, and the request after
    it on the same connection gets its own answer, not the one before."""
    handler, seen = answer_with(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{"first": 1}',
        b'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{"second": 2}',
    )

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        first, second = await get(transport, url), await get(transport, url)
        assert (first.status_code, first.content) == (200, b'{"first": 1}')
        assert "link" not in first.headers
        assert (second.status_code, second.content) == (200, b'{"second": 2}')

    run(handler, scenario)
    assert len(seen) == 2  # one connection, reused


def test_endless_headers_are_refused_before_memory_runs_out() -> None:
    """Headers past 64 KiB, in one line or in many, are a RemoteProtocolError."""
    one = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    many = b"HTTP/1.1 200 OK\r\n" + b"X-Small: aaaaaaaa\r\n" * 100_000 + b"\r\n"
    for answer in (one, many):
        handler, _ = answer_with(answer)

        async def scenario(url: str, transport: HTTP1Transport) -> None:
            with pytest.raises(httpx.RemoteProtocolError, match="headers over 65536 bytes"):
                await get(transport, url)

        run(handler, scenario)


def test_a_body_to_the_end_of_the_connection_cut_by_a_reset_is_an_error() -> None:
    """A close-delimited body ends well only with a clean close: a reset mid-body is a
    RemoteProtocolError, never a truncated answer taken for whole."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\n\r\n{"status": "comp')
        await writer.drain()
        await asyncio.sleep(0.05)  # the head and part of the body reach the client first
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        with pytest.raises(httpx.RemoteProtocolError, match="broke"):
            await get(transport, url)

    run(handler, scenario)


def test_a_request_under_way_when_the_transport_closes_does_not_keep_its_connection() -> None:
    """aclose() while a request waits for its answer: once answered, the connection is closed,
    not pooled."""
    handler, _ = answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    connections: list[Any] = []

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        request = asyncio.create_task(get(transport, url))
        await asyncio.sleep(0)  # the request starts
        await transport.aclose()
        await request
        connections.extend(exchange for idle in transport._idle.values() for exchange in idle)

    run(handler, scenario)
    assert connections == []


def test_a_refused_connection_is_a_connect_error() -> None:
    """Nothing listening: httpx.ConnectError naming host and port."""

    async def scenario() -> None:
        transport = HTTP1Transport(max_connections=1, max_body=100)
        with pytest.raises(httpx.ConnectError, match=r"127\.0\.0\.1:9"):
            await get(transport, "http://127.0.0.1:9")

    asyncio.run(scenario())


def silent_on_the_first_connection(connections: list[asyncio.StreamWriter]) -> Handler:
    """A server handler that never answers on its first connection and answers ``{}`` on the
    others; ``connections`` collects them."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await read_request(reader)
        if len(connections) == 1:
            await asyncio.sleep(5)  # never answers in time
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        await reader.read()

    return handler


def test_a_cancelled_request_never_leaves_its_connection_for_reuse() -> None:
    """The caller's timeout cancels the exchange; the next request gets a fresh connection."""
    connections: list[asyncio.StreamWriter] = []
    handler = silent_on_the_first_connection(connections)

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await get(transport, url)
        response = await get(transport, url)
        assert response.content == b"{}"

    run(handler, scenario)
    assert len(connections) == 2


def test_an_answer_later_than_the_timeout_is_a_read_timeout_and_its_connection_dropped() -> None:
    connections: list[asyncio.StreamWriter] = []
    handler = silent_on_the_first_connection(connections)

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        where = httpx.URL(url + "/v1/videos/x")
        began = time.monotonic()
        with pytest.raises(httpx.ReadTimeout, match=r"within 0\.2s"):
            await transport.exchange(b"GET", where, b"Host: x\r\n", timeout=0.2)
        assert 0.15 < time.monotonic() - began < 2
        status, _, body = await transport.exchange(b"GET", where, b"Host: x\r\n", timeout=2)
        assert (status, body) == (200, b"{}")

    run(handler, scenario)
    assert len(connections) == 2


def test_a_timeout_counts_the_wait_for_a_free_connection() -> None:
    """With every connection of the pool busy, the time runs out waiting: httpx.PoolTimeout."""
    handler, _ = answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1)
        await handler(reader, writer)

    async def scenario() -> None:
        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        where = httpx.URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/videos/x")
        transport = HTTP1Transport(max_connections=1, max_body=100)
        try:
            first = asyncio.create_task(transport.exchange(b"GET", where, b"Host: x\r\n"))
            await asyncio.sleep(0.05)  # it holds the only connection
            with pytest.raises(httpx.PoolTimeout, match=r"within 0\.2s"):
                await transport.exchange(b"GET", where, b"Host: x\r\n", timeout=0.2)
            assert (await first)[0] == 200
        finally:
            await transport.aclose()
            server.close()

    asyncio.run(scenario())


def test_a_poll_that_ran_out_of_time_says_where_it_waited() -> None:
    """The API client's timeout failure: the answer's own wait reads as it always has; a
    wait for a connection of the pool says so."""
    handler, _ = answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1)
        await handler(reader, writer)

    async def scenario() -> list[FetchResult]:
        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            async with VideoClient(
                url, Secret("sk-transport-test"), timeout=0.3, max_connections=1
            ) as client:
                return list(await asyncio.gather(client.fetch("video_a"), client.fetch("video_b")))
        finally:
            server.close()

    answered, waited = asyncio.run(scenario())
    assert answered.error == {"type": "timeout", "message": "no complete response within 0.3s"}
    assert waited.error == {
        "type": "timeout",
        "message": "no connection of the pool came free within 0.3s",
    }


def test_a_connection_not_accepted_in_time_is_a_connect_timeout() -> None:
    """A server whose queue of connections to accept is full drops new ones' first packet, so
    connecting hangs: httpx.ConnectTimeout naming the host, within the time given."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    queued = []
    try:
        for _ in range(4):  # more than the queue holds; never accepted
            waiting = socket.socket()
            waiting.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                waiting.connect(("127.0.0.1", port))
            queued.append(waiting)

        async def scenario() -> None:
            transport = HTTP1Transport(max_connections=1, max_body=100)
            where = httpx.URL(f"http://127.0.0.1:{port}/v1/videos/x")
            began = time.monotonic()
            with pytest.raises(httpx.ConnectTimeout, match=r"127\.0\.0\.1:\d+ within 0\.3s"):
                await transport.exchange(b"GET", where, b"Host: x\r\n", timeout=0.3)
            assert time.monotonic() - began < 2
            await transport.aclose()

        asyncio.run(scenario())
    finally:
        for waiting in queued:
            waiting.close()
        listener.close()


def test_tls_is_verified_and_works_with_a_trusted_authority() -> None:
    """HTTPS with SNI against a certificate the client's context trusts."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    handler, _ = answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        assert (await get(transport, url)).content == b"{}"

    run(handler, scenario, tls=(server_context, client_context))


def test_a_connection_this_machine_has_no_descriptor_for_is_a_local_resource_error() -> None:
    """Under a process limit of open files already reached, opening a connection fails with
    EMFILE: a LocalResourceError (this machine's shortage), not an httpx.ConnectError that
    would fail the task."""
    handler, _ = answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    held: list[int] = []

    async def scenario(url: str, transport: HTTP1Transport) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
        try:
            with contextlib.suppress(OSError):
                while True:
                    held.append(os.open(os.devnull, os.O_RDONLY))
            with pytest.raises(LocalResourceError, match="Too many open files"):
                await get(transport, url)
        finally:
            for descriptor in held:
                os.close(descriptor)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert (await get(transport, url)).content == b"{}"  # descriptors back: it connects

    run(handler, scenario)


def test_idle_connections_to_other_origins_are_closed_to_stay_within_the_cap() -> None:
    """With max_connections 2, a third origin's request closes the oldest idle connection
    first: never more than two sockets open."""
    ended: list[int] = []

    def server_for(index: int) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:
                    await read_request(reader)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    await writer.drain()
            ended.append(index)
            writer.close()

        return handle

    async def scenario() -> None:
        servers = [await asyncio.start_server(server_for(i), "127.0.0.1", 0) for i in range(3)]
        urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in servers]
        transport = HTTP1Transport(max_connections=2, max_body=100)
        try:
            await get(transport, urls[0])
            await get(transport, urls[1])
            await get(transport, urls[2])
            await asyncio.sleep(0.1)
            assert ended == [0]  # the oldest idle one, to the first origin
            await get(transport, urls[1])  # still pooled: no new connection, nothing closed
            await asyncio.sleep(0.1)
            assert ended == [0]
        finally:
            await transport.aclose()
            for server in servers:
                server.close()

    asyncio.run(scenario())
