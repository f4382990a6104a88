"""Helpers for the dashboard in a real browser: Debian's Chromium driven by Playwright, a demo
of tasks in every state (the simulator, a daemon polling it, the app beside it), signing in,
and the screenshots docs/dashboard.md shows (``docs/make_screenshots.py`` writes them with
these same functions; the browser tests take them too)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.web import TOKEN, daemon_running
from tracker import Secret, Tracker
from tracker.simulator import Reply, Simulator, SimulatorServer

CHROMIUM = Path("/usr/bin/chromium")
# CI sets it: a missing browser then fails the run instead of skipping the browser tests.
REQUIRE_BROWSER = os.environ.get("TESTS_REQUIRE_BROWSER") == "1"
SIMULATOR_TOKEN = "sk-dashboard-demo"


def require_chromium() -> None:
    """Skips the calling test module when Chromium is not installed; fails it instead when
    the run requires the browser tests (TESTS_REQUIRE_BROWSER=1)."""
    if CHROMIUM.exists():
        return
    reason = f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    if REQUIRE_BROWSER:
        pytest.fail(reason + "; TESTS_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright, until the block ends. Not for a whole test
    session: Playwright's sync API keeps an event loop running on this thread while it is
    open, and later tests call asyncio.run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture(scope="module", name="browser")
def module_browser() -> Iterator[Any]:
    """``browser``, one Chromium for the module: a test module imports this to use it."""
    with chromium() as launched:
        yield launched


@contextmanager
def signed_in(browser: Any, url: str, **context: Any) -> Iterator[Any]:
    """A page of a fresh browser context (``context``: its options), signed in through the
    login page, until the block ends."""
    opened = browser.new_context(**context)
    page = opened.new_page()
    sign_in(page, url)
    try:
        yield page
    finally:
        opened.close()


def showcase_script(polls: int = 8) -> list[Reply]:
    """A video queued a while, then rising with one failed poll on the way, then completed:
    every part of a task's page has something to show."""
    replies = [Reply(video={"status": "queued", "progress": 0})] * 3
    for step in range(1, polls + 1):
        replies.append(Reply(video={"status": "in_progress", "progress": round(95 * step / polls)}))
        if step == polls // 2:
            replies.append(Reply(status=503, raw=b'{"error": {"message": "upstream busy"}}'))
    return [*replies, Reply(video={"status": "completed", "progress": 100})]


def rising(start: int, status: str = "in_progress") -> list[Reply]:
    """A video in progress from ``start`` percent, a point every poll, for minutes."""
    return [Reply(video={"status": status, "progress": min(start + n, 99)}) for n in range(400)]


@dataclass
class Demo:
    url: str
    tracker: Tracker
    simulator: Simulator
    showcase: str  # completes after a failed poll
    running: list[str]  # still in progress for minutes
    ids: list[str]


def demo_tasks(simulator: Simulator) -> tuple[str, list[str], list[str]]:
    """The showcase, the long-running tasks, and every ID to register."""
    showcase = simulator.script("video_68f0a1c2e4b6_launch_trailer", showcase_script())
    running = [
        simulator.script(f"video_6{n}b1d3f5a7c9e_scene_{n}", rising(start))
        for n, start in enumerate((62, 35, 12), start=1)
    ]
    running.append(
        simulator.script(
            "sora-2:task_01JD7Q5R8W3X9K2M4N6P8R0T2V_relay_long_id", rising(48, "IN_PROGRESS")
        )
    )
    others = [
        simulator.add_video("video_7a2c4e6f8091_teaser", steps=4),
        simulator.add_video("video_7b3d5f7a9b2c_banned", steps=2, outcome="failed"),
        simulator.add_video("video_7c4e6a8bac3d_backlog", queued=10_000),
        "video_7d5f7b9cbd4e_missing",  # never created: not found after three 404s
    ]
    return showcase, running, [showcase, *running, *others]


@contextmanager
def demo(
    database_url: str, poll_interval: float = 0.3, token: str | None = TOKEN
) -> Iterator[Demo]:
    """The simulator, a daemon polling it every ``poll_interval`` seconds and serving the app
    (with ``token`` as its server token), and the demo's tasks registered."""
    simulator = Simulator(token=SIMULATOR_TOKEN)
    showcase, running, ids = demo_tasks(simulator)
    with SimulatorServer(simulator) as api_base:
        tracker = Tracker(
            database_url=database_url,
            api_base=api_base,
            token=SIMULATOR_TOKEN,
            poll_interval=poll_interval,
            request_timeout=5,
        )
        tokens = (Secret(token),) if token else ()
        tracker.settings = replace(tracker.settings, http_port=0, server_tokens=tokens)
        with tracker, daemon_running(tracker):
            url = f"http://127.0.0.1:{wait_for(lambda: tracker.daemon.ports.get('--http-port'))}"
            tracker.add(ids[:6], label="launch")
            tracker.add(ids[6:], label="ads")
            yield Demo(url, tracker, simulator, showcase, running, ids)


def wait_for(probe: Callable[[], Any], seconds: float = 30) -> Any:
    """``probe()`` once it is truthy; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (value := probe()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)
    return value


def sign_in(page: Any, url: str, token: str = TOKEN) -> None:
    """Through the login page, as a person would."""
    page.goto(f"{url}/login")
    page.get_by_label("Server token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def take_screenshots(browser: Any, demo: Demo, out: Path) -> list[Path]:
    """The overview (wide and at a phone's width) and the showcase task's page, once the
    showcase has completed and the long tasks are moving."""
    reads = demo.tracker.database.reads
    wait_for(lambda: (task := reads.task(demo.showcase)) and task.finished)
    wait_for(lambda: all((getattr(reads.task(i), "progress", 0) or 0) > 0 for i in demo.running))
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, width, height, path in (
        ("overview.png", 1280, 760, "/"),
        ("task.png", 1280, 900, f"/tasks/{demo.showcase}"),
        ("overview-phone.png", 375, 800, "/"),
    ):
        context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme="light"
        )
        page = context.new_page()
        sign_in(page, demo.url)
        page.goto(demo.url + path)
        page.wait_for_selector("main h1")
        page.screenshot(path=out / name, full_page=name != "overview.png")
        shots.append(out / name)
        context.close()
    return shots
