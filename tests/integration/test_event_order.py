"""The event feed in commit order on a real database and a real server: a snapshot whose
transaction commits late, behind newer ones another process committed, reaches every stream in
its place, live and on resuming; resume points that are not places, or never were, are
answered plainly."""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url

from tests.web import AUTH, TOKEN, follow_in_background, read_events
from tracker import Secret
from tracker.core.feed import START, FeedPosition
from tracker.settings import Settings
from tracker.store import Database
from tracker.store.schema import snapshots, tasks
from tracker.testing import RunningApp

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    database = Database.open(postgres_url)
    database.tasks.add_tasks(["held", "other", "third"], None, NOW)
    try:
        yield database
    finally:
        database.close()


def _hold_a_snapshot(database: Database, task_id: str) -> tuple[object, object]:
    """A transaction that has written a snapshot of ``task_id`` and not committed."""
    connection = database.engine.connect()
    transaction = connection.begin()
    connection.execute(
        insert(snapshots).values(task_id=task_id, polled_at=NOW, status="late", finished=False)
    )
    return connection, transaction


def test_a_snapshot_committed_late_is_read_in_its_place(database: Database) -> None:
    """Behind a transaction still running, the committed snapshots after it wait; once it
    commits, its snapshot comes first, then theirs, each once."""
    connection, transaction = _hold_a_snapshot(database, "held")
    database.tasks.remove_tasks(["other"], NOW, channels=())
    waiting = database.feed.read(START, 100)
    assert waiting.items == [] and waiting.held_back
    transaction.commit()  # type: ignore[attr-defined]
    connection.close()  # type: ignore[attr-defined]
    read = database.feed.read(START, 100)
    assert [item.task_id for item in read.items] == ["held", "other"]
    assert not read.held_back
    assert read.items == sorted(read.items, key=lambda item: item.position)
    assert database.feed.head() == read.items[-1].position
    assert database.feed.read(read.items[0].position, 100).items == read.items[1:]


def test_transactions_that_write_no_snapshots_hold_nothing_back(
    database: Database, postgres_url: str
) -> None:
    """A write transaction left open on another table, and one in another database of the
    server, are no writers of snapshots: what is committed meanwhile is read at once."""
    address = make_url(postgres_url)
    with (
        database.engine.connect() as busy,
        psycopg.connect(
            host=address.host, port=address.port, user=address.username, dbname="postgres"
        ) as elsewhere,
    ):
        transaction = busy.begin()
        busy.execute(update(tasks).where(tasks.c.task_id == "third").values(label="busy"))
        elsewhere.execute("SELECT pg_current_xact_id()")  # holds a transaction ID, uncommitted
        database.tasks.remove_tasks(["other"], NOW, channels=())
        read = database.feed.read(START, 100)
        transaction.rollback()
    assert [item.task_id for item in read.items] == ["other"]
    assert not read.held_back


def test_a_late_commit_reaches_live_and_resuming_streams_once(database: Database) -> None:
    """A write held open 3 s (longer than any grace a feed could give a gap) while another
    process commits newer snapshots: a live stream and one resuming from before both get it,
    in its place, and nothing twice."""
    settings = replace(
        Settings(database_url=str(database.engine.url)), server_tokens=(Secret(TOKEN),)
    )
    with (
        RunningApp(settings, database) as url,
        httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
    ):
        live, reader = follow_in_background(client, until=5)
        before = str(database.feed.head())
        connection, transaction = _hold_a_snapshot(database, "held")
        database.tasks.remove_tasks(["other"], NOW, channels=())
        time.sleep(3)
        assert not live, "a snapshot went out past a transaction still running"
        transaction.commit()  # type: ignore[attr-defined]
        connection.close()  # type: ignore[attr-defined]
        database.tasks.remove_tasks(["third"], NOW, channels=())
        reader.join(30)
        resumed = read_events(client, "/v1/events", until=5, headers={"Last-Event-ID": before})
    for events in (live, resumed):
        assert [(e.event, e.data["task_id"]) for e in events] == [
            ("snapshot", "held"),
            ("snapshot", "other"),
            ("finished", "other"),
            ("snapshot", "third"),
            ("finished", "third"),
        ]
        places = [FeedPosition.parse(e.id or "") for e in events if e.event != "snapshot"]
        assert places == sorted(places)  # type: ignore[type-var]


def test_resume_points_that_are_not_places_or_were_never_given(database_url: str) -> None:
    """`Last-Event-ID: abc` is a 400 naming the header; an ID past the newest (a database
    recreated) is a `reset` to where the stream starts, then the live events."""
    database = Database.open(database_url)
    database.tasks.add_tasks(["before", "after"], None, NOW)
    database.tasks.remove_tasks(["before"], NOW, channels=())
    settings = replace(Settings(database_url=database_url), server_tokens=(Secret(TOKEN),))
    try:
        with (
            RunningApp(settings, database) as url,
            httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
        ):
            refused = client.get("/v1/events", headers={"Last-Event-ID": "abc"})
            assert refused.status_code == 400
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["errors"][0]["parameter"] == "Last-Event-ID"
            head = str(database.feed.head())
            got, reader = follow_in_background(
                client, until=3, headers={"Last-Event-ID": "999999999"}
            )
            database.tasks.remove_tasks(["after"], NOW, channels=())
            reader.join(30)
    finally:
        database.close()
    assert got[0].event == "reset" and got[0].id == head
    assert got[0].data["position"] == head
    assert [(e.event, e.data["task_id"]) for e in got[1:]] == [
        ("snapshot", "after"),
        ("finished", "after"),
    ]


def test_a_client_that_hangs_up_mid_event_costs_nothing_and_misses_nothing(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client reads part of an event and resets the connection: the server says nothing
    amiss and goes on; resuming from before that event, the client gets it whole, once."""
    database = Database.open(database_url)
    database.tasks.add_tasks(["a", "b"], None, NOW)
    settings = replace(Settings(database_url=database_url), server_tokens=(Secret(TOKEN),))
    caplog.set_level(logging.WARNING)
    try:
        with RunningApp(settings, database) as url:
            before = str(database.feed.head())
            port = int(url.rpartition(":")[2])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}"
                    "\r\n\r\n".encode()
                )
                received = b""
                while b"retry:" not in received:
                    received += sock.recv(4096)
                database.tasks.remove_tasks(["a"], NOW, channels=())
                while b"event: snapshot" not in received:
                    received += sock.recv(64)
                linger = struct.pack("ii", 1, 0)  # a reset, not a polite close
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            database.tasks.remove_tasks(["b"], NOW, channels=())
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
                assert client.get("/healthz").status_code == 200
                resumed = read_events(
                    client, "/v1/events", until=4, headers={"Last-Event-ID": before}
                )
    finally:
        database.close()
    assert [(e.event, e.data["task_id"]) for e in resumed] == [
        ("snapshot", "a"),
        ("finished", "a"),
        ("snapshot", "b"),
        ("finished", "b"),
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
