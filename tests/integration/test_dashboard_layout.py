"""The overview's layout and weight in Chromium, on tasks written straight to SQLite: a label
is whole, on a wide screen and on a phone, a phone's width shows many tasks in little
height, and a full page with its assets stays under 150 KB."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import chromium, require_chromium
from tracker.core.models import Failure, FetchResult
from tracker.core.video import Video
from tracker.daemon.poller import Policy, decide
from tracker.settings import Settings
from tracker.store import Database
from tracker.testing import RunningApp

require_chromium()

POLICY = Policy(interval=10, give_up_after=3600, request_timeout=5)
LONG_ERROR = "The upstream relay answered with an error page instead of the video object " * 2


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def polled(database: Database, answers: dict[str, FetchResult], later: float = 0) -> None:
    """One poll of each task, ``later`` seconds from now, answered ``answers[task_id]``,
    recorded as the daemon records it."""
    now = datetime.now(UTC) + timedelta(seconds=later)
    claimed = database.polls.claim_due("w", now, now + timedelta(seconds=60), len(answers))
    rng = random.Random(1)
    records = [decide(task, answers[task.task_id], now, POLICY, rng) for task in claimed]
    database.polls.record_polls("w", records)


def video(status: str, progress: int) -> FetchResult:
    body = json.dumps({"object": "video", "status": status, "progress": progress})
    return FetchResult(200, 12.0, body, Video(status, progress), None)


def failed_poll(message: str = LONG_ERROR) -> FetchResult:
    return FetchResult.failed(Failure.HTTP_STATUS, message, 12.0, http_status=502)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    """An empty database, and the service on it (no token) at the returned URL."""
    database_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    database = Database.open(database_url)
    with RunningApp(Settings(database_url=database_url), database) as url:
        yield database, url
    database.close()


def write_phone_tasks(database: Database) -> None:
    """Fifty tasks as a busy overview shows them: moving, completed, failing polls with a
    long error, and not polled yet."""
    answers = {
        "moving": video("in_progress", 40),
        "done": video("completed", 100),
        "failing": failed_poll(),
    }
    polls = {
        f"video_6{n:02d}b1d3f5a7c9e_{kind}": answers[kind] for kind in answers for n in range(13)
    }
    database.tasks.add_tasks(list(polls), "launch trailer", datetime.now(UTC))
    polled(database, polls)
    waiting = [f"video_7{n:02d}c4e6a8bac3d_waiting" for n in range(50 - len(polls))]
    database.tasks.add_tasks(waiting, "ads", datetime.now(UTC))


def overview_at(browser: Browser, url: str, width: int, query: str = "") -> Page:
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    page.goto(f"{url}/{query}")
    page.wait_for_selector("main h1")
    return page


def test_labels_are_whole_on_a_wide_screen_and_on_a_phone(
    browser: Browser, serving: tuple[Database, str]
) -> None:
    """No label is cut: at 1280 px the labels' column is as wide as the page's longest label
    needs, and a label longer than its widest step wraps inside it; at 375 px every label
    reads whole in its card, and nothing scrolls sideways."""
    database, url = serving
    labels = {
        "video_a": "launch trailer",
        "video_b": "a label of some length, longer than most",
        "video_c": "the autumn campaign's long-form brand film, second cut, for the regional "
        "review board",
    }
    for task_id, label in labels.items():
        database.tasks.add_tasks([task_id], label, datetime.now(UTC))
    # Alone on its page, the short label is whole in its narrow column, on one line.
    for width, query, shown in (
        (1280, "", labels),
        (1280, "?q=video_a", ["video_a"]),
        (375, "", labels),
    ):
        page = overview_at(browser, url, width, query)
        for task_id in shown:
            cell = page.locator(f'tr[data-task="{task_id}"] td.label')
            assert cell.inner_text() == labels[task_id]
            assert cell.evaluate("el => el.scrollWidth <= el.clientWidth"), (width, task_id)
            one_line = cell.evaluate("el => el.offsetHeight < 40")
            assert one_line or width == 375 or task_id == "video_c", (query, task_id)
        assert page.evaluate("document.documentElement.scrollWidth") == width
        page.context.close()


def test_a_phone_shows_fifty_tasks_in_dense_cards(
    browser: Browser, serving: tuple[Database, str]
) -> None:
    """At 375 px, fifty tasks (moving, completed, failing with a long error, not polled yet)
    make a page under 5,500 px high (12,700 px as cards of labelled cells): the ID and the
    status on one line, the rest as many to a line as fit, empty cells left out, an error on
    two lines at most; nothing scrolls sideways."""
    database, url = serving
    write_phone_tasks(database)
    page = overview_at(browser, url, 375, "?limit=50")
    expect(page.locator("table.tasks tbody tr")).to_have_count(50)
    height, width = page.evaluate(
        "[document.documentElement.scrollHeight, document.documentElement.scrollWidth]"
    )
    cards = page.evaluate(
        "[...document.querySelectorAll('table.tasks tbody tr')].map(row =>"
        " [row.dataset.task.split('_').pop(), row.getBoundingClientRect().height])"
    )
    page.context.close()
    tallest: dict[str, float] = {}
    for kind, card in cards:
        tallest[kind] = max(tallest.get(kind, 0), card)
    assert height < 5500 and width == 375, (height, tallest)
    assert tallest["waiting"] <= 65 and tallest["moving"] <= 65, tallest
    assert tallest["done"] <= 85 and tallest["failing"] <= 105, tallest


def test_a_phone_shows_a_tasks_snapshots_a_line_or_two_each(
    browser: Browser, serving: tuple[Database, str]
) -> None:
    """At 375 px a task's page lists what each poll saw in a line or two (a card of seven
    labelled cells took 140 px), a failed poll's error on a line of its own."""
    database, url = serving
    database.tasks.add_tasks(["video_snapshots"], None, datetime.now(UTC))
    for poll, answer in enumerate(
        [*[video("in_progress", 10 * n) for n in range(6)], failed_poll("upstream busy")]
    ):
        polled(database, {"video_snapshots": answer}, later=poll * 60)
    page = overview_at(browser, url, 375, "tasks/video_snapshots")
    rows = page.locator("table.snapshots tbody tr")
    expect(rows).to_have_count(7)
    heights = rows.evaluate_all("rows => rows.map(row => row.getBoundingClientRect().height)")
    width = page.evaluate("document.documentElement.scrollWidth")
    page.context.close()
    assert max(heights[:-1]) <= 60 and heights[-1] <= 80 and width == 375, heights


def test_a_full_overview_and_its_assets_weigh_under_150_kb(
    browser: Browser, tmp_path: Path
) -> None:
    """A hundred rows with long IDs, labels and errors, and every file the page loads, as
    Chromium received them (headers included), stay under 150 KB."""
    url_of_database = f"sqlite:///{tmp_path / 'weight.db'}"
    database = Database.open(url_of_database)
    write_failed_polls(database, 100)
    received: list[int] = []
    with RunningApp(Settings(database_url=url_of_database), database) as url:
        context = browser.new_context()
        page = context.new_page()
        page.on("requestfinished", lambda request: received.append(transferred(request)))
        page.goto(f"{url}/?limit=100", wait_until="load")
        expect(page.locator("table.tasks tbody tr")).to_have_count(100)
        context.close()
    database.close()
    names = [name for name, _ in received]
    assert {
        "/",
        *(f"/static/dashboard/{name}" for name in ("dashboard.css", "dashboard.js", "live.js")),
    } <= set(names)
    assert sum(size for _, size in received) < 150_000, received


def transferred(request: Any) -> tuple[str, int]:
    """A request's path, and the bytes of its answer on the wire (headers included)."""
    sizes = request.sizes()
    path = request.url.split("//", 1)[1].partition("/")[2].partition("?")[0]
    return "/" + path, int(sizes["responseBodySize"] + sizes["responseHeadersSize"])


def write_failed_polls(database: Database, count: int) -> None:
    """``count`` tasks with 64-character IDs and labels, each with a failed poll recorded
    the way the daemon records one (a long error message)."""
    now = datetime.now(UTC)
    ids = [f"sora-2:task_{index:04d}_" + "x" * 47 for index in range(count)]
    database.tasks.add_tasks(ids, "a label of some length", now)
    policy = Policy(interval=10, give_up_after=3600, request_timeout=5)
    message = "The upstream relay answered with an error page instead of the video object " * 2
    failed = FetchResult.failed(Failure.HTTP_STATUS, message, 12.0, http_status=502)
    claimed = database.polls.claim_due("w", now, now + timedelta(seconds=60), count)
    records = [decide(task, failed, now, policy, random.Random(1)) for task in claimed]
    database.polls.record_polls("w", records)
