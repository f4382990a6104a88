"""Woken by writes, on a real PostgreSQL: a daemon and the event feed LISTEN, and a write from
another process (here another engine, as another process has) wakes them long before their
slow look; with the LISTEN connection killed they go on, say so once, look at the quicker pace
meanwhile, and are woken again once it is back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import API, make_tracker
from tests.web import AUTH, TOKEN, follow_in_background
from tracker import Secret
from tracker.core.eventloop import run_event_loop
from tracker.daemon import poller
from tracker.settings import Settings
from tracker.store import Database
from tracker.store import wakeups as wakeups_module
from tracker.testing import RunningApp
from tracker.web import events as feed

pytestmark = pytest.mark.postgres

LOST = "not hearing other processes' writes"


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until ``condition`` held; fails the test past ``timeout``."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, "it did not happen in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - began


def listeners(url: str) -> list[int]:
    """The backends LISTENing on the test database."""
    address = make_url(url)
    with psycopg.connect(
        host=address.host, port=address.port, user=address.username, dbname="postgres"
    ) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN %%'",
            (address.database,),
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def kill_listeners(url: str) -> int:
    address = make_url(url)
    pids = listeners(url)
    with psycopg.connect(
        host=address.host, port=address.port, user=address.username, dbname="postgres"
    ) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(pids)


def test_a_task_registered_by_another_process_wakes_an_idle_daemon(
    api: API, postgres_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Idle looks made a minute long: a task another process registers is polled within a
    fraction of a second all the same, before and after the LISTEN connection is killed (the
    daemon says so once and carries on)."""
    monkeypatch.setattr(poller, "LOOK_SECONDS", 60.0)
    monkeypatch.setattr(poller, "UNHEARD_LOOK_SECONDS", 60.0)
    monkeypatch.setattr(wakeups_module, "RETRY_SECONDS", (0.2,))
    videos = [api.simulator.add_video(f"video_woken_{i}", steps=1000) for i in range(3)]
    other = Database.open(postgres_url)
    caplog.set_level(logging.INFO)
    with make_tracker(api, postgres_url, poll_interval=60.0) as tracker:

        async def scenario() -> list[float]:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            waits = []
            try:
                await wait_for(lambda: tracker.database.wakeups.listening)
                await asyncio.sleep(0.3)  # idle: nothing registered
                for index, video in enumerate(videos):
                    if index == 1:
                        assert await asyncio.to_thread(kill_listeners, postgres_url) == 1
                        await wait_for(lambda: not tracker.database.wakeups.listening)
                        await wait_for(lambda: tracker.database.wakeups.listening)
                        await asyncio.sleep(0.3)
                    await asyncio.to_thread(other.tasks.add_tasks, [video], None, datetime.now(UTC))
                    waits.append(await wait_for(lambda v=video: api.simulator.polls(v) >= 1))
            finally:
                stop.set()
                await daemon
            return waits

        waits = asyncio.run(scenario())
    other.close()
    assert max(waits) < 2.0, waits
    said = [r for r in caplog.records if LOST in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING


def test_a_snapshot_another_process_writes_reaches_a_stream_without_waiting_for_a_look(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed of a `tracker serve` reads when a write says there is news: with its looks made
    a minute long, a removal committed by another process still reaches the stream at once."""
    monkeypatch.setattr(feed, "LOOK_SECONDS", 60.0)
    monkeypatch.setattr(feed, "UNHEARD_LOOK_SECONDS", 60.0)
    database = Database.open(postgres_url)
    other = Database.open(postgres_url)
    other.tasks.add_tasks(["video_told"], None, datetime.now(UTC))
    settings = replace(Settings(database_url=postgres_url), server_tokens=(Secret(TOKEN),))
    try:
        with (
            RunningApp(settings, database) as url,
            httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
        ):
            got, reader = follow_in_background(client, until=2)
            deadline = time.monotonic() + 10
            while not database.wakeups.listening:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.3)  # the feed's first read is behind it: it rests for a minute
            began = time.monotonic()
            other.tasks.remove_tasks(["video_told"], datetime.now(UTC), channels=())
            reader.join(10)
            took = time.monotonic() - began
    finally:
        other.close()
        database.close()
    assert [event.event for event in got] == ["snapshot", "finished"]
    assert took < 2.0


def test_a_lost_listen_connection_leaves_no_watch_on_its_socket(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the loop `tracker run` and `tracker serve` use, the LISTEN connection killed: the
    socket number it had is soon another connection's (a client's, here), and that connection
    is served. A watch left on the lost socket's number kept the next socket given it from ever
    being read: a client reconnecting then got nothing until the server's 408."""
    monkeypatch.setattr(wakeups_module, "RETRY_SECONDS", (0.2,))
    database = Database.open(postgres_url)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def scenario() -> list[bytes]:
        wakeups = database.wakeups
        listening = asyncio.create_task(wakeups.listen())
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        answers = []
        try:
            for round_ in range(3):
                await wait_for(lambda: wakeups.listening)
                assert await asyncio.to_thread(kill_listeners, postgres_url) == 1
                await wait_for(lambda: not wakeups.listening)
                # Opened before the LISTEN connection is made again: the lowest free socket
                # number is the one the lost connection had.
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 5
                )
                writer.write(b"round %d\n" % round_)
                answers.append(await asyncio.wait_for(reader.readline(), 5))
                writer.close()
        finally:
            listening.cancel()
            server.close()
        return answers

    try:
        answers = run_event_loop(scenario())
    finally:
        database.close()
    assert answers == [b"round 0\n", b"round 1\n", b"round 2\n"]
