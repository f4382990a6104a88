"""`tracker daemons` beside real daemons: one appears as it starts, reads stopped after SIGTERM,
and one killed with SIGKILL reads lost three beats (15 s) after its last."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import TRACKER, Run
from tests.conftest import API


def daemons(tracker: Run, env: dict[str, str]) -> list[dict[str, Any]]:
    result = tracker("daemons", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def until(probe: Any, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := probe()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.2)
    return value


@pytest.mark.slow
def test_daemons_appear_stop_and_are_lost(tracker: Run, api: API, workdir: Path) -> None:
    env = {"TRACKER_API_BASE": api.url, "TRACKER_API_TOKEN": api.token}
    assert tracker("add", api.simulator.add_video("video_d", steps=1000), env=env).returncode == 0
    started = [
        subprocess.Popen(
            [TRACKER, "run", "--interval", "1"],
            cwd=workdir,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        rows = until(lambda: len(daemons(tracker, env)) == 2 and daemons(tracker, env))
        by_pid = {row["pid"]: row for row in rows}
        assert set(by_pid) == {process.pid for process in started}
        assert {row["state"] for row in rows} == {"running"}
        assert all(row["providers"] == ["default"] for row in rows)
        gentle, killed = started
        gentle.send_signal(signal.SIGTERM)
        assert gentle.wait(15) == 0
        killed.send_signal(signal.SIGKILL)
        killed.wait(15)
        states = until(
            lambda: (
                {
                    row["pid"]: row["state"]
                    for row in daemons(tracker, env)
                    if row["state"] != "running"
                }
                if all(row["state"] != "running" for row in daemons(tracker, env))
                else None
            ),
            seconds=30,
        )
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
    assert states == {gentle.pid: "stopped", killed.pid: "lost"}
    table = tracker("daemons", env=env)
    assert table.returncode == 0 and "lost" in table.stdout and "stopped" in table.stdout
