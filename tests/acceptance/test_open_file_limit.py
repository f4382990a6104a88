"""`tracker run` and its open-file limit: raised to the hard limit at start, and a refusal with
exit 2 when --concurrency cannot fit under it (docs/scaling.md)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import API
from tracker.simulator import Reply

TRACKER = str(Path(sys.executable).with_name("tracker"))


def limited(soft: int, hard: int) -> Callable[[], None]:
    """What the child runs before `tracker`: the limits systemd or a shell would give it."""

    def set_limits() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return set_limits


def tracker(
    api: API, workdir: Path, limits: Callable[[], None], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRACKER_DATABASE_URL": f"sqlite:///{workdir / 'tracker.db'}",
        "TRACKER_API_BASE": api.url,
        "TRACKER_API_TOKEN": api.token,
        "TRACKER_POLL_INTERVAL": "0.1",
    }
    return subprocess.run(
        [TRACKER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limits,
    )


def test_a_concurrency_the_hard_limit_cannot_hold_is_refused_with_one_line(
    api: API, tmp_path: Path
) -> None:
    """Under a hard limit of 1,024, --concurrency 2048 exits 2 before polling, with one line
    giving the limit, what is needed and how to raise it."""
    api.simulator.add_video("video_1")
    assert tracker(api, tmp_path, limited(1024, 1024), "add", "video_1").returncode == 0
    result = tracker(api, tmp_path, limited(1024, 1024), "run", "--concurrency", "2048")
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("tracker: error: 2,048 requests in flight (--concurrency, or the sum of")
    assert "may open 1,024" in line
    assert "LimitNOFILE=" in line and "ulimit -n" in line
    assert api.simulator.polls("video_1") == 0


def test_the_soft_limit_is_raised_to_the_hard_one_so_a_large_concurrency_runs(
    api: API, tmp_path: Path
) -> None:
    """Under systemd's default soft limit of 1,024 with a hard limit above it, --concurrency
    2048 runs: the daemon raises its soft limit to the hard one and says so once."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the hard open-file limit here is {hard}, under the 4,096 the test needs")
    api.simulator.script(
        "video_1",
        [Reply(video={"status": "in_progress"}), Reply(video={"status": "completed"})],
    )
    assert tracker(api, tmp_path, limited(1024, 4096), "add", "video_1").returncode == 0
    result = tracker(
        api, tmp_path, limited(1024, 4096), "run", "--until-done", "--concurrency", "2048"
    )
    assert result.returncode == 0, result.stderr
    assert "open-file limit raised from 1024 to 4096" in result.stderr
    assert api.simulator.polls("video_1") == 2
