"""The server under the app, through real sockets: clients that never finish a request do not
keep others out, and stopping ends event streams and requests under way within the budget."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx

from tests.web import AUTH, TOKEN
from tracker import Secret
from tracker.settings import settings_from_keywords
from tracker.store import Database
from tracker.testing import RunningApp
from tracker.web.server import Limits


def half_open(host: str, port: int, source: str) -> socket.socket:
    """A connection that starts a request and never finishes it."""
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.bind((source, 0))
    connection.settimeout(5)
    connection.connect((host, port))
    connection.sendall(b"POST /webhooks HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return connection


def test_a_thousand_half_open_connections_do_not_keep_a_client_out(sqlite_url: str) -> None:
    """1,000 connections from one address start requests and stall: what one address may hold
    is capped, a client elsewhere is answered at once, and the stalled ones are answered 408
    and closed when their time is up."""
    database = Database.open(sqlite_url)
    settings = settings_from_keywords(None, database_url=sqlite_url)
    limits = Limits(request_seconds=2.0, total=2048, per_client=200)
    held: list[socket.socket] = []
    with RunningApp(replace(settings, http_port=0), database, limits=limits) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(1000):
            with contextlib.suppress(OSError):  # refused at once: over the address's cap
                held.append(half_open("127.0.0.1", port, "127.0.0.2"))
        started = time.monotonic()
        answer = httpx.get(f"{url}/healthz", timeout=5)
        answered_in = time.monotonic() - started
        time.sleep(limits.request_seconds + 1.0)
        closed = [_answer_of(connection) for connection in held]
    database.close()
    assert answer.status_code == 200 and answered_in < 1.0
    assert limits.refused >= 1000 - limits.per_client
    timed_out = [reply for reply in closed if reply.startswith(b"HTTP/1.1 408")]
    assert len(timed_out) >= limits.per_client - 5
    assert all(reply in (b"", b"reset") or reply.startswith(b"HTTP/1.1 408") for reply in closed)


def _answer_of(connection: socket.socket) -> bytes:
    try:
        return connection.recv(100)
    except OSError:
        return b"reset"
    finally:
        connection.close()


def test_stopping_ends_event_streams_and_finishes_requests_in_time(sqlite_url: str) -> None:
    """With an event stream open, stopping the server ends the stream cleanly (the client
    reads its end) and the whole stop takes well under the daemon's budget."""
    database = Database.open(sqlite_url)
    settings = replace(
        settings_from_keywords(None, database_url=sqlite_url),
        http_port=0,
        server_tokens=(Secret(TOKEN),),
    )
    ended = threading.Event()
    app = RunningApp(settings, database)
    url = app.__enter__()

    def follow() -> None:
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", f"{url}/v1/events", headers=AUTH) as response,
        ):
            for _ in response.iter_lines():
                pass
        ended.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    time.sleep(0.5)
    started = time.monotonic()
    app.__exit__(None, None, None)
    stop_took = time.monotonic() - started
    reader.join(5)
    database.close()
    assert ended.is_set(), "the stream did not end"
    assert stop_took < 3.0


def test_a_request_whose_body_stops_coming_is_answered_408(sqlite_url: str) -> None:
    """A body that stops coming is answered 408 and its connection closed once the request's
    time is up, as headers that stop coming are: on a connection's first request and on a
    later one of the same connection. An event stream opened meanwhile outlives that time."""
    database = Database.open(sqlite_url)
    settings = settings_from_keywords(None, database_url=sqlite_url)
    limits = Limits(request_seconds=1.0)
    stalled = b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    stalled += b'Content-Length: 100\r\n\r\n{"ids": ['
    replies = []
    with (
        RunningApp(replace(settings, http_port=0), database, limits=limits) as url,
        httpx.Client(base_url=url, timeout=10) as client,
        client.stream("GET", "/v1/events") as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        port = int(url.rsplit(":", 1)[1])
        for earlier in (b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                if earlier:
                    connection.sendall(earlier)
                    assert connection.recv(4096).startswith(b"HTTP/1.1 200")
                connection.sendall(stalled)
                started = time.monotonic()
                reply = connection.recv(4096)
                replies.append((reply, time.monotonic() - started, connection.recv(4096)))
        client.post("/v1/tasks", json={"ids": ["video_late"]})
        client.delete("/v1/tasks/video_late")
        told = next(line for line in lines if line.startswith("event:"))
    database.close()
    for reply, waited, after in replies:
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert 0.8 < waited < 3.0 and after == b""  # then closed
    assert limits.timed_out == 2
    assert told == "event: snapshot"


def test_a_chunked_body_over_the_limit_is_answered_413(sqlite_url: str) -> None:
    """A body sent in chunks, with no Content-Length to refuse it by, is answered 413 as soon
    as what arrived passes the limit, as a problem: on the API (8 MiB) and on a form of the
    dashboard (64 KiB)."""
    database = Database.open(sqlite_url)
    settings = settings_from_keywords(None, database_url=sqlite_url)

    def chunks(size: int) -> Iterator[bytes]:
        for _ in range(size // 16384):
            yield b"x" * 16384

    with RunningApp(replace(settings, http_port=0), database) as url:
        api = httpx.post(
            f"{url}/v1/tasks",
            content=chunks(9 * 1024 * 1024),
            headers={"content-type": "application/json"},
        )
        form = httpx.post(
            f"{url}/login",
            content=chunks(128 * 1024),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    database.close()
    for answer, limit in ((api, "8,388,608"), (form, "65,536")):
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == f"The request body is over {limit} bytes."
