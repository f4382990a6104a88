"""Every committed snapshot reaches every event stream exactly once, with real processes on a
real PostgreSQL and the faults of a real deployment: two daemons and a `tracker serve`, three
clients (one reconnecting with Last-Event-ID every second), a write transaction held open
while the daemons commit newer snapshots, a daemon killed with SIGKILL and started again, and
the PostgreSQL server itself restarted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, insert, text

from tests.acceptance.test_postgres_daemons import TRACKER, environment, wait_until
from tests.conftest import API
from tracker.store.engine import create_engine
from tracker.store.schema import snapshots

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SERVER_TOKEN = "event-delivery-token-0123456789"
TASKS = 40
STEPS = 14


def restart_postgresql() -> None:
    """The test server restarted (it is left running: the rest of the suite needs it)."""
    version = os.listdir("/etc/postgresql")[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    if not Path("/etc/postgresql").is_dir():
        pytest.skip("restarting the server needs a local PostgreSQL cluster")
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Client:
    """A thread following /v1/events, reconnecting (with Last-Event-ID) whenever the stream
    ends or fails, and on purpose every ``hang_up_every`` seconds right after an event with an
    ID of its own, as a browser may. Keeps the snapshot IDs it was sent, in order."""

    def __init__(self, url: str, hang_up_every: float | None = None) -> None:
        self.url = url
        self.hang_up_every = hang_up_every
        self.snapshots: list[int] = []
        self.finished: list[str] = []
        self.resets = 0
        self.reconnects = 0
        self.stopping = threading.Event()
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.last_id: str | None = None

    def _follow(self) -> None:
        headers = {"Authorization": f"Bearer {SERVER_TOKEN}"}
        with httpx.Client(timeout=httpx.Timeout(5.0, read=30.0)) as client:
            while not self.stopping.is_set():
                if self.last_id is not None:
                    headers["Last-Event-ID"] = self.last_id
                try:
                    self._read(client, headers)
                except httpx.HTTPError:
                    time.sleep(0.2)
                self.reconnects += 1

    def _read(self, client: httpx.Client, headers: dict[str, str]) -> None:
        began = time.monotonic()
        with client.stream("GET", f"{self.url}/v1/events", headers=headers) as response:
            if response.status_code != 200:
                time.sleep(0.2)
                return
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith("retry:"):
                    self.opened.set()
                if line != "":
                    if not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    continue
                if "id" in fields:
                    self.last_id = fields["id"]
                if "data" in fields:
                    self._take(fields.get("event", ""), json.loads(fields["data"]))
                own_id = "id" in fields
                fields = {}
                if self.stopping.is_set():
                    return
                late = self.hang_up_every and time.monotonic() - began > self.hang_up_every
                if late and own_id:
                    return

    def _take(self, event: str, data: dict[str, object]) -> None:
        if event == "snapshot":
            self.snapshots.append(int(data["id"]))  # type: ignore[call-overload]
        elif event == "finished":
            self.finished.append(str(data["task_id"]))
        elif event == "reset":
            self.resets += 1


def test_every_committed_snapshot_reaches_every_client_once(
    api: API, postgres_url: str, engine: Engine, tmp_path: Path
) -> None:
    port = free_port()
    env = environment(
        api,
        postgres_url,
        TRACKER_POLL_INTERVAL="0.25",
        TRACKER_SERVER_TOKENS=SERVER_TOKEN,
    )
    ids = [api.simulator.add_video(f"video_ev_{i}", steps=STEPS) for i in range(TASKS)]
    subprocess.run([TRACKER, "db", "upgrade"], env=env, check=True, capture_output=True)

    logs: list[Path] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        logs.append(tmp_path / f"process-{len(logs)}.log")
        with logs[-1].open("wb") as log:
            return subprocess.Popen([TRACKER, *args], env=env, stdout=log, stderr=log)

    def daemon() -> subprocess.Popen[bytes]:
        return start("run")

    server = start("serve", "--port", str(port))
    daemons = [daemon(), daemon()]
    url = f"http://127.0.0.1:{port}"
    clients = [Client(url), Client(url), Client(url, hang_up_every=1.0)]
    try:
        wait_until(lambda: _answers(url), timeout=30)
        for client in clients:
            client.thread.start()
            assert client.opened.wait(30)
        subprocess.run([TRACKER, "add", *ids], env=env, check=True, capture_output=True)
        wait_until(lambda: _count(engine, "SELECT COUNT(*) FROM snapshots") > 3 * TASKS)

        # A write transaction holds a snapshot for 4 s while the daemons commit newer ones.
        with engine.connect() as held:
            transaction = held.begin()
            held.execute(
                insert(snapshots).values(
                    task_id=ids[0], polled_at=datetime.now(UTC), status="held", finished=False
                )
            )
            before = _count(engine, "SELECT COUNT(*) FROM snapshots")
            time.sleep(4)
            assert _count(engine, "SELECT COUNT(*) FROM snapshots") > before
            transaction.commit()

        daemons[0].send_signal(signal.SIGKILL)
        daemons[0].wait(10)
        time.sleep(1)
        daemons[0] = daemon()

        restart_postgresql()
        wait_until(
            lambda: _count(engine, "SELECT COUNT(*) FROM tasks WHERE NOT finished") == 0,
            timeout=120,
        )
        committed = sorted(_ids(engine))
        wait_until(
            lambda: all(len(set(c.snapshots)) >= len(committed) for c in clients), timeout=60
        )
    finally:
        for client in clients:
            client.stopping.set()
        for process in [*daemons, server]:
            process.send_signal(signal.SIGTERM)
        for process in [*daemons, server]:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
    for client in clients:
        assert sorted(client.snapshots) == committed, "a snapshot missed or sent twice"
        assert sorted(client.finished) == sorted(ids)
        assert client.resets == 0
    assert clients[2].reconnects >= 3  # it did reconnect, again and again
    for log in logs:
        assert "Traceback" not in log.read_text(), log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text(sql)) or 0)


def _ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [int(row) for row in connection.scalars(text("SELECT id FROM snapshots"))]
