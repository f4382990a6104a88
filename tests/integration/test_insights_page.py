"""The Insights page in a real browser (Debian's Chromium through Playwright), served over the
report's hand-computed fixture: each chart and table says what the fixture holds, the form
chooses the report's keys, nothing breaks the Content-Security-Policy, a phone's width never
scrolls sideways; and its screenshots, wide and narrow, from a week of history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, REQUIRE_BROWSER, sign_in
from tests.doubles import FakeClock
from tests.insights_history import insights_screenshots, seed_history
from tests.report_fixture import NOW, fill, fixture_rows
from tests.web import TOKEN
from tracker import Secret
from tracker.settings import settings_from_keywords
from tracker.store import Database
from tracker.testing import RunningApp

if not CHROMIUM.exists():
    reason = f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    if REQUIRE_BROWSER:
        pytest.fail(reason + "; TESTS_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


def serve(database_url: str, clock: FakeClock | None = None) -> tuple[Database, RunningApp]:
    database = Database.open(database_url)
    settings = replace(
        settings_from_keywords(None, database_url=database_url),
        http_port=0,
        server_tokens=(Secret(TOKEN),),
    )
    return database, RunningApp(settings, database, clock=clock)


@pytest.fixture(scope="module")
def fixture_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app over the report's fixture, its clock at the fixture's now."""
    path = tmp_path_factory.mktemp("insights") / "tracker.db"
    database, app = serve(f"sqlite:///{path}", FakeClock(NOW))
    fill(database, fixture_rows())
    with app as url:
        yield url
    database.close()


@pytest.fixture
def page(browser: Browser, fixture_url: str) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, fixture_url)
    yield page
    context.close()


def test_the_page_shows_what_the_window_holds(page: Page, fixture_url: str) -> None:
    """Reached from the navigation: the totals, the hours, each model's durations, the days,
    why tasks failed and the report by model, as the fixture says; no script or style is
    refused by the Content-Security-Policy."""
    refused: list[str] = []
    page.on("console", lambda said: refused.append(said.text) if said.type == "error" else None)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Insights").click()
    page.wait_for_url(f"{fixture_url}/insights")
    expect(page.get_by_role("link", name="Insights")).to_have_attribute("aria-current", "page")
    totals = page.locator(".totals")
    expect(totals).to_contain_text("20 registered")
    expect(totals).to_contain_text("13 completed")
    expect(totals).to_contain_text("1 failed (7.1%)")
    expect(totals).to_contain_text("3 ended otherwise")
    expect(page.locator("#hours-label")).to_have_text(
        "13 completed and 1 failed over 169 hours; the busiest hour, 2026-12-04 09:00 UTC, 12."
    )
    bars = page.locator("#hours-chart path.bar-done").get_attribute("d") or ""
    assert bars.count("z") == 2  # two hours saw completions
    sora = page.locator('figure.histogram[data-model="sora-2"]')
    expect(sora.locator("figcaption")).to_have_text("sora-2 3 completed · p50 3m20s · p90 5m00s")
    # 100 s, 200 s and 300 s: a third each in 1 to 2 min, 3 to 5 min, 5 to 10 min
    expect(sora.locator("rect.bin title").nth(2)).to_have_text("1m00s to 2m00s: 1 (33%)")
    expect(sora.locator("rect.bin title").nth(4)).to_have_text("3m00s to 5m00s: 1 (33%)")
    expect(sora.locator("rect.bin title").nth(5)).to_have_text("5m00s to 10m00s: 1 (33%)")
    expect(page.locator("figure.histogram")).to_have_count(2)  # the unnamed model completed none
    expect(page.locator("#days-label")).to_have_text(
        "Over 2 days, the daily p50 ran from 1m00s to 5m00s."
    )
    reasons = page.locator("table.reasons tbody tr")
    expect(reasons).to_have_count(1)
    expect(reasons.first).to_contain_text("no message given")
    rows = page.locator("table.report tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("th")).to_have_text("sora-2")
    expect(rows.nth(0).locator('td[data-label="Failure rate"]')).to_have_text("25.0%")
    expect(rows.nth(0).locator('td[data-label="p50"]')).to_have_text("3m20s")
    expect(rows.nth(2).locator("th")).to_have_text("—")
    expect(page.get_by_role("link", name="as JSON")).to_have_attribute(
        "href", "/v1/report?since=7d&by=model"
    )
    assert refused == []


def test_the_form_chooses_the_reports_keys(page: Page, fixture_url: str) -> None:
    page.goto(f"{fixture_url}/insights")
    page.get_by_label("model", exact=True).uncheck()
    page.get_by_label("day", exact=True).check()
    page.get_by_label("size", exact=True).check()
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/insights?since=7d&by=&by=size&by=day")
    expect(page.get_by_role("heading", name="The report, by size, day")).to_be_visible()
    rows = page.locator("table.report tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("1280x720")
    expect(page.locator("p.hint code").last).to_have_text("tracker report --since 7d --by size,day")
    page.get_by_label("size", exact=True).uncheck()
    page.get_by_label("day", exact=True).uncheck()
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table.report tbody tr")).to_have_count(1)
    expect(page.locator('table.report th[data-label="Tasks"]')).to_have_text("20")


def test_a_phone_reads_it_without_scrolling_sideways(browser: Browser, fixture_url: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    sign_in(page, fixture_url)
    for query in ("", "?since=30d&by=model&by=size&by=seconds&by=provider&by=label&by=hour"):
        page.goto(f"{fixture_url}/insights{query}")
        page.wait_for_selector("main h1")
        width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= viewport == 375, query
        expect(page.locator("svg.plot").first).to_be_visible()
    context.close()


def test_screenshots_of_a_week_of_history(browser: Browser, tmp_path: Path) -> None:
    """The function docs/make_screenshots.py runs: the page at 1280 and at 375 px, over a week
    of seeded history, as PNGs of those widths."""
    database, app = serve(f"sqlite:///{tmp_path / 'week.db'}")
    seed_history(database, datetime.now(UTC))
    with app as url:
        shots = insights_screenshots(browser, url, tmp_path / "shots", sign_in)
    database.close()
    assert [shot.name for shot in shots] == ["insights.png", "insights-phone.png"]
    for shot, width in zip(shots, (1280, 375), strict=True):
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == width
