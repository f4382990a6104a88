"""A daemon short of open files, through real sockets: in a process of its own whose open-file
limit it cannot raise, the descriptors are taken but a few, so most connections to the
simulator fail with EMFILE (docs/failures.md, The database and the process)."""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import resource
import sqlite3
from pathlib import Path

from tests.conftest import API, TOKEN
from tests.doubles import Receiver
from tracker.simulator import Reply

TASKS = 16
# The child's limit, hard and soft: room for the check at start (16 requests and the
# daemon's own needs), none to spare once the test has taken all but FREE.
LIMIT = 256
FREE = 10


def _starved_daemon(url: str, database: str, log: str) -> None:
    """The child: a daemon polling TASKS tasks at concurrency TASKS with FREE descriptors."""
    from tracker import Tracker

    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    tracker = Tracker(
        database_url=database,
        api_base=url,
        token=TOKEN,
        poll_interval=0.5,
        concurrency=TASKS,
        request_timeout=5,
    )
    tracker.add([f"video_{i}" for i in range(TASKS)])
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    for descriptor in held[len(held) - FREE :]:
        os.close(descriptor)

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(4.0, stop.set)
        await tracker.run_async(stop=stop)

    asyncio.run(run())
    tracker.close()


def test_a_daemon_out_of_descriptors_waits_instead_of_failing_its_tasks(
    api: API, tmp_path: Path
) -> None:
    """Connections refused by the process's own open-file limit write no error snapshot and
    leave error_count at 0; one ERROR line says so; every task is polled, again and again, as
    connections free up."""
    for i in range(TASKS):
        api.simulator.script(
            f"video_{i}", [Reply(video={"status": "in_progress", "progress": 5}, delay=0.2)]
        )
    database, log = tmp_path / "tracker.db", tmp_path / "daemon.log"
    child = multiprocessing.get_context("spawn").Process(
        target=_starved_daemon, args=(api.url, f"sqlite:///{database}", str(log))
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    lines = log.read_text().splitlines()
    shortages = [line for line in lines if line.startswith("ERROR")]
    assert len(shortages) == 1, lines
    assert "Too many open files" in shortages[0]
    connection = sqlite3.connect(database)
    try:
        errors = connection.execute(
            "SELECT COUNT(*) FROM snapshots WHERE error IS NOT NULL"
        ).fetchone()[0]
        counts = connection.execute("SELECT poll_count, error_count FROM tasks").fetchall()
    finally:
        connection.close()
    assert errors == 0
    assert len(counts) == TASKS
    assert all(polls >= 2 and failures == 0 for polls, failures in counts), counts


def _starved_notifier(url: str, database: str, log: str, receiver: str) -> None:
    """The child: a daemon owing notifications of NOTIFIED removed tasks, FREE descriptors."""
    from tracker import Tracker

    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    tracker = Tracker(
        database_url=database,
        api_base=url,
        token=TOKEN,
        concurrency=4,
        request_timeout=5,
        notify_url=receiver,
    )
    ids = [f"video_told_{i}" for i in range(NOTIFIED)]
    tracker.add(ids)
    tracker.remove(ids)
    tracker.database.engine.connect().close()  # its connection open before the files run out
    # Its modules loaded before the files run out, as a daemon's are once it runs.
    importlib.import_module("tracker.daemon.follow_up_workers")
    importlib.import_module("tracker.http.client")
    importlib.import_module("tracker.http.proxy_router")
    importlib.import_module("tracker.http.transfers")
    tracker.daemon  # noqa: B018
    held = []
    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    # Room for the database thread's connection (three files on SQLite) and a few of the
    # eight deliveries the notifier makes at once.
    for descriptor in held[len(held) - 6 :]:
        os.close(descriptor)

    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(4.0, stop.set)
        await tracker.run_async(stop=stop)

    asyncio.run(run())
    tracker.close()


NOTIFIED = 12


def test_notifications_out_of_descriptors_wait_and_count_no_failed_attempt(
    api: API, tmp_path: Path
) -> None:
    """Deliveries refused by the process's own open-file limit are this machine's trouble, as
    polls are: no attempt is counted against them, no back-off; they wait for a connection to
    free and go again, and every event is delivered once, on its first counted attempt."""
    receiver = Receiver()
    database, log = tmp_path / "tracker.db", tmp_path / "daemon.log"
    child = multiprocessing.get_context("spawn").Process(
        target=_starved_notifier,
        args=(api.url, f"sqlite:///{database}", str(log), receiver.url),
    )
    try:
        child.start()
        child.join(60)
    finally:
        receiver.close()
    assert child.exitcode == 0
    lines = log.read_text().splitlines()
    assert sum("Too many open files" in line for line in lines if line.startswith("ERROR")) == 1
    assert not [line for line in lines if "notifying" in line and "failed" in line], lines
    delivered = sorted(event["task_id"] for _headers, event in receiver.deliveries())
    assert delivered == sorted(f"video_told_{i}" for i in range(NOTIFIED))
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT state, attempts FROM outbox").fetchall()
    finally:
        connection.close()
    assert rows == [("delivered", 1)] * NOTIFIED
