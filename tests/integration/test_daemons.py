"""The daemons table (docs/operating.md, Daemons): a running daemon keeps its row, refreshed
every beat with what it holds and its pace, and marks it stopped when it stops; one not seen for
three beats is lost. Read by `GET /v1/daemons`, the Daemons page and `tracker daemons`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import API, make_tracker
from tests.web import AUTH, TOKEN
from tracker import Secret
from tracker.core.daemons import DaemonRow
from tracker.daemon import presence
from tracker.settings import Settings
from tracker.store import Database
from tracker.testing import RunningApp

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def row(daemon_id: str, **changes: object) -> DaemonRow:
    made = DaemonRow(
        daemon_id=daemon_id,
        host="worker-1",
        pid=4242,
        version="0.1.0",
        started_at=NOW - timedelta(hours=1),
        last_seen_at=NOW,
        stopped_at=None,
        providers=["default", "relay-b"],
        held=12,
        polls_last_minute=340,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_a_daemon_not_seen_for_three_beats_is_lost() -> None:
    seen = row("a")
    assert seen.state(NOW + timedelta(seconds=15)) == "running"
    assert seen.state(NOW + timedelta(seconds=15.1)) == "lost"
    assert replace(seen, stopped_at=NOW).state(NOW + timedelta(days=1)) == "stopped"


def test_the_rows_are_written_refreshed_stopped_and_forgotten(database_url: str) -> None:
    database = Database.open(database_url)
    try:
        store = database.daemons
        store.beat(
            row("old", started_at=NOW - timedelta(days=3), last_seen_at=NOW - timedelta(days=2))
        )
        store.beat(row("a"))
        store.beat(row("a", last_seen_at=NOW + timedelta(seconds=5), held=3, host="ignored"))
        store.beat(row("b", started_at=NOW - timedelta(minutes=1)))
        store.stopped("b", NOW + timedelta(seconds=7))
        store.forget(NOW - timedelta(days=1))
        rows = {daemon.daemon_id: daemon for daemon in store.rows()}
    finally:
        database.close()
    assert list(rows) == ["b", "a"]  # the most recently started first; "old" forgotten
    assert (rows["a"].host, rows["a"].held, rows["a"].last_seen_at) == (
        "worker-1",
        3,
        NOW + timedelta(seconds=5),
    )
    assert rows["a"].providers == ["default", "relay-b"]
    assert (rows["b"].stopped_at, rows["b"].held) == (NOW + timedelta(seconds=7), 0)


def test_a_beat_after_the_first_is_one_statement(database_url: str) -> None:
    """An idle daemon beats every few seconds: each costs the database one write."""
    from sqlalchemy import event

    database = Database.open(database_url)
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]).split(None, 1)[0].upper())

    try:
        database.daemons.beat(row("a"))
        event.listen(database.engine, "before_cursor_execute", record)
        database.daemons.beat(row("a", last_seen_at=NOW + timedelta(seconds=5)))
    finally:
        database.close()
    assert [kind for kind in sent if kind not in {"BEGIN", "COMMIT"}] == ["UPDATE"]


def test_a_running_daemon_keeps_its_row_and_marks_it_stopped(
    api: API, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its row appears as it starts, says how many polls it made in the last minute once it
    has beaten, and reads stopped once it stops."""
    monkeypatch.setattr(presence, "BEAT_SECONDS", 0.2)
    videos = [api.simulator.add_video(f"video_beat_{i}", steps=1000) for i in range(3)]
    with make_tracker(api, database_url) as tracker:
        tracker.add(videos)

        async def scenario() -> DaemonRow:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            began = time.monotonic()
            while not [d for d in tracker.daemons() if d.polls_last_minute > 3]:
                assert time.monotonic() - began < 20, tracker.daemons()
                await asyncio.sleep(0.05)
            [running] = tracker.daemons()
            stop.set()
            await daemon
            return running

        running = asyncio.run(scenario())
        [stopped] = tracker.daemons()
    now = datetime.now(UTC)
    assert running.state(now) == "running" and running.providers == ["default"]
    assert running.daemon_id == stopped.daemon_id and stopped.state(now) == "stopped"
    assert stopped.held == 0 and stopped.stopped_at is not None


def test_the_api_and_the_page_show_each_daemon_and_its_state(sqlite_url: str) -> None:
    database = Database.open(sqlite_url)
    now = datetime.now(UTC)
    database.daemons.beat(row("here:1:aa", last_seen_at=now, host="worker-1"))
    database.daemons.beat(row("gone:2:bb", last_seen_at=now - timedelta(minutes=2), host="w-2"))
    settings = replace(Settings(database_url=sqlite_url), server_tokens=(Secret(TOKEN),))
    try:
        with (
            RunningApp(settings, database) as url,
            httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
        ):
            listed = client.get("/v1/daemons").json()["daemons"]
            page = client.get("/daemons").text
    finally:
        database.close()
    assert {d["host"]: d["state"] for d in listed} == {"worker-1": "running", "w-2": "lost"}
    assert listed[0]["providers"] == ["default", "relay-b"] and listed[0]["held"] == 12
    assert 'data-daemon="here:1:aa"' in page and ">lost</span>" in page
    assert '<a href="/daemons" aria-current="page">Daemons</a>' in page
