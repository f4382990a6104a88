"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracker.simulator import Simulator, SimulatorServer

TOKEN = "sk-test-7f3a9c"


@pytest.fixture(autouse=True)
def _no_tracker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the TRACKER_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("TRACKER_"):
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


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"
