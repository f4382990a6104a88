"""Fixtures shared by every test layer."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tracker import Tracker
from tracker.settings.proxies import PROXY_VARIABLES
from tracker.simulator import Simulator, SimulatorServer
from tracker.store import Database, migrations
from tracker.store.engine import create_engine

TOKEN = "sk-test-7f3a9c"
# The server the PostgreSQL tests create their databases on. CI sets TESTS_REQUIRE_POSTGRES=1,
# which turns "PostgreSQL unavailable" from a skip into a failure.
POSTGRES_URL = os.environ.get(
    "TESTS_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("TESTS_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _no_tracker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the TRACKER_* and proxy variables they set themselves: a developer's
    HTTPS_PROXY must not send the tests' requests to 127.0.0.1 through a real proxy."""
    for name in list(os.environ):
        if name.startswith("TRACKER_") or name.lower() in PROXY_VARIABLES:
            monkeypatch.delenv(name)


@dataclass
class API:
    simulator: Simulator
    url: str
    token: str = TOKEN


@pytest.fixture
def api() -> Iterator[API]:
    """The simulated video API, served over HTTP on 127.0.0.1 from a thread."""
    simulator = Simulator(token=TOKEN)
    with SimulatorServer(simulator) as url:
        yield API(simulator, url)


def make_tracker(api: API, database_url: str, **settings: Any) -> Tracker:
    """A Tracker on the simulator, polling every 0.1 s; ``settings`` replace Settings fields."""
    tracker = Tracker(
        database_url=database_url,
        api_base=api.url,
        token=api.token,
        poll_interval=0.1,
        request_timeout=5,
    )
    tracker.settings = replace(tracker.settings, **settings)
    return tracker


def run_until_done(tracker: Tracker, timeout: float = 60) -> None:
    """``tracker run --until-done``, failing the test if it takes over ``timeout`` seconds."""

    async def go() -> None:
        await asyncio.wait_for(tracker.run_async(until_done=True), timeout)

    asyncio.run(go())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


def _postgres_admin() -> object:
    """An autocommit connection to the test server, or a skip (a failure if it is required)."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(POSTGRES_URL)
        return psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
            connect_timeout=5,
        )
    except Exception as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (TESTS_REQUIRE_POSTGRES=1) but: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of its own on the test PostgreSQL server, dropped afterwards."""
    from sqlalchemy.engine import make_url

    name = f"tracker_test_{secrets.token_hex(6)}"
    admin = _postgres_admin()
    admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    admin.close()  # type: ignore[attr-defined]
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        # A connection of its own: the test may have restarted the server meanwhile.
        admin = _postgres_admin()
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an SQLite file and on a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """The stores on a database at the newest migration, on each kind (``database_url``)."""
    engine = create_engine(database_url)
    migrations.upgrade(engine)
    yield Database(engine)
    engine.dispose()
