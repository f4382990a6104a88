"""The overview as operators use it, in Chromium, behind a server token: sorted by a click on a
column's header (either way, page after page), filtered by provider (offered once there are
several) and by the last error's text, and exported with the same filters by the session's
own link (docs/dashboard.md)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from tests.browser import chromium, require_chromium, sign_in
from tests.web import TOKEN
from tracker import Secret
from tracker.core.models import SortKey, TaskFilter, TaskOrder
from tracker.settings import Settings
from tracker.store import Database
from tracker.store.schema import tasks
from tracker.testing import RunningApp

require_chromium()

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    database_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    database = Database.open(database_url)
    settings = replace(Settings(database_url=database_url), server_tokens=(Secret(TOKEN),))
    with RunningApp(settings, database) as url:
        yield database, url
    database.close()


def set_columns(database: Database, task_id: str, **values: Any) -> None:
    with database.engine.begin() as connection:
        connection.execute(update(tasks).where(tasks.c.task_id == task_id).values(**values))


def signed_in(browser: Browser, url: str, width: int = 1280) -> Page:
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    sign_in(page, url)
    return page


def shown(page: Page) -> list[str]:
    rows = page.locator("table.tasks tbody tr")
    return [str(task) for task in rows.evaluate_all("rows => rows.map(r => r.dataset.task)")]


def test_a_click_on_a_header_sorts_each_way_and_the_pages_follow(
    browser: Browser, serving: tuple[Database, str]
) -> None:
    """Thirty tasks, progress shared by several, five never polled: "Progress" sorts the
    furthest along first, a second click the other way; the next page follows on in the same
    order, and the two pages hold every task once, the counts' links keep it; one provider alone
    gets no column."""
    database, url = serving
    for index in range(30):
        database.tasks.add_tasks([f"video_{index:02d}"], None, NOW + timedelta(seconds=index))
        if index % 6:
            set_columns(database, f"video_{index:02d}", progress=index % 4 * 25)
    page = signed_in(browser, url)
    page.goto(f"{url}/?limit=25")
    page.locator("thead").get_by_role("link", name="Progress").click()
    page.wait_for_url("**sort=progress**")
    descending = TaskOrder(SortKey.PROGRESS)
    expected = [task.task_id for task in database.reads.page(TaskFilter(), 30, order=descending)]
    expect(page.locator("thead th[aria-sort='descending']")).to_have_text("Progress ▼")
    # The counts, as the page's script swaps them in, lead to their states in this order.
    failed = page.locator("#counts ul.counts a", has_text="failed")
    expect(failed).to_have_attribute("href", "/?state=failed&sort=progress")
    first = shown(page)
    page.get_by_role("link", name="Next »").click()
    page.wait_for_url("**cursor=**")
    assert "sort=progress" in page.url
    assert first + shown(page) == expected
    page.locator("thead").get_by_role("link", name="Progress").click()
    page.wait_for_url("**order=asc**")
    ascending = TaskOrder(SortKey.PROGRESS, descending=False)
    expected = [task.task_id for task in database.reads.page(TaskFilter(), 25, order=ascending)]
    assert shown(page) == expected
    assert page.locator("thead th", has_text="Provider").count() == 0
    assert page.locator("#f-provider").count() == 0
    page.context.close()


def test_providers_and_the_last_error_filter_and_the_export_keeps_them(
    browser: Browser, serving: tuple[Database, str]
) -> None:
    """Tasks of two providers: a provider column and filter; the last error's text is found
    in any case; the page's export link gives the same tasks as CSV to the signed-in browser,
    and nothing to one without a session."""
    database, url = serving
    for provider in ("default", "relay"):
        ids = [f"video_{provider}_{index}" for index in range(4)]
        database.tasks.add_tasks(ids, None, NOW, provider=provider)
        for index, task_id in enumerate(ids):
            error = "HTTP 504: Upstream Timeout" if index % 2 else "connection refused"
            set_columns(database, task_id, last_error=error, progress=index * 10)
    page = signed_in(browser, url)
    page.goto(f"{url}/?sort=progress&order=asc")
    expect(page.locator("thead th", has_text="Provider")).to_have_count(1)
    page.locator("#f-provider").select_option("relay")
    page.locator("#f-error").fill("upstream TIMEOUT")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**error=**")
    assert "sort=progress" in page.url and "order=asc" in page.url
    assert shown(page) == ["video_relay_1", "video_relay_3"]
    cells = page.locator("tbody td[data-provider]").all_inner_texts()
    assert cells == ["relay", "relay"]
    link = page.get_by_role("link", name="CSV").first.get_attribute("href")
    assert link is not None and link.startswith("/v1/export?table=tasks&format=csv")
    exported = page.request.get(url + link)
    assert exported.status == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    assert [row["task_id"] for row in rows] == ["video_relay_1", "video_relay_3"]
    stranger = browser.new_context().request.get(url + link)
    assert stranger.status == 401
    page.context.close()
