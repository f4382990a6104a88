"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a daemon
polling the simulator and serving the app on SQLite. Registered tasks are listed, rows and a
task's page move live without a reload, the register form adds tasks or names the bad line,
pages need a sign-in (the API a token) and leave the console clean, and a phone's width never
scrolls sideways (test_dashboard_layout.py holds the layout and the page's weight)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import (  # noqa: F401 (module_browser: the browser fixture)
    Demo,
    demo,
    module_browser,
    require_chromium,
    showcase_script,
    sign_in,
    signed_in,
    take_screenshots,
)
from tests.web import TOKEN
from tracker.core.models import TaskFilter
from tracker.simulator import Reply
from tracker.simulator.lifecycles import not_found

require_chromium()

LIVE_MS = 20_000  # how long Playwright waits for a live change


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One daemon for the module: tasks in every state, polled every 0.3 s."""
    database = tmp_path_factory.mktemp("dashboard") / "tracker.db"
    with demo(f"sqlite:///{database}", poll_interval=0.3) as started:
        yield started


@pytest.fixture
def page(browser: Browser, running: Demo) -> Iterator[Page]:
    """A fresh browser context, signed in through the login page."""
    with signed_in(browser, running.url) as page:
        yield page


def test_without_a_token_pages_go_to_login_and_after_it_list_the_tasks(
    browser: Browser, running: Demo
) -> None:
    """A browser without a session is sent to the login page and the API answers it 401;
    after giving the token once, the overview lists every registered task. The token never
    appears in a URL."""
    context = browser.new_context()
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(f"{running.url}/tasks/{running.showcase}")
    assert page.url == f"{running.url}/login?next=/tasks/{running.showcase}"
    assert page.request.get(f"{running.url}/v1/tasks").status == 401
    page.get_by_label("Server token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{running.url}/tasks/{running.showcase}")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    for task_id in running.ids:
        expect(page.locator(f'tr[data-task="{task_id}"]')).to_have_count(1)
    assert page.request.get(f"{running.url}/v1/tasks").status == 200
    assert not [url for url in urls if TOKEN in url]
    context.close()


def test_signing_in_leaves_the_browsers_console_clean(browser: Browser, running: Demo) -> None:
    """From the login page to the overview and its first live beats, the browser logs
    nothing, no request fails and the connection banner stays hidden: not being signed in
    yet is no error. A signed-in browser
    shown the login page (a link from another site comes without the cookie) goes on."""
    context = browser.new_context()
    page = context.new_page()
    logged: list[str] = []
    page.on("console", lambda message: logged.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: logged.append(f"uncaught: {error}"))
    failed: list[str] = []
    page.on(
        "response",
        lambda answer: answer.status < 400 or failed.append(f"{answer.status} {answer.url}"),
    )
    page.goto(f"{running.url}/")
    page.wait_for_load_state("networkidle")
    sign_in(page, running.url)
    page.wait_for_timeout(4000)  # the first beat: the counts read, the rows' events
    banner = page.locator("#connection")
    assert banner.is_hidden(), banner.text_content()  # no trouble said where there is none
    page.goto(f"{running.url}/login?next=/register")
    page.wait_for_url(f"{running.url}/register")
    context.close()
    assert logged == [] and failed == []


def test_a_rows_progress_moves_and_it_turns_completed_without_a_reload(
    page: Page, running: Demo
) -> None:
    """On the overview, a task's progress bar advances as polls arrive and its state turns
    completed in place: the page is never reloaded."""
    video = running.simulator.add_video("video_live_row", queued=2, steps=12)
    running.tracker.add([video], label="live-row")
    page.goto(f"{running.url}/?label=live-row")
    page.evaluate("window.stayed = true")
    row = page.locator(f'tr[data-task="{video}"]')
    expect(row.locator("[data-status]")).not_to_have_text("completed")
    bar = row.locator("progress")
    first = int(bar.get_attribute("value") or 0)
    page.wait_for_function(
        "([selector, first]) => { const bar = document.querySelector(selector);"
        " return bar.value > first && bar.value < 100; }",
        arg=[f'tr[data-task="{video}"] progress', first],
        timeout=LIVE_MS,
    )
    expect(row.locator("[data-status]")).to_have_text("completed", timeout=LIVE_MS)
    expect(row.locator("[data-reason]")).to_have_text("completed")
    expect(row.locator("[data-pct]")).to_have_text("100%")
    assert row.get_attribute("class") == "t-done"
    assert page.evaluate("window.stayed") is True


def test_a_task_the_api_never_knew_reads_no_status_when_it_finishes_in_view(
    page: Page, running: Demo
) -> None:
    """A task whose every poll is a 404 finishes as not found while its row is in view: its
    badge says "no status" in the ended tone, word for word as after a reload."""
    video = "video_never_known_live"
    slow_404 = Reply(status=404, raw=not_found(video), delay=1.0)
    running.simulator.script(video, [slow_404])
    running.tracker.add([video], label="never-known")
    page.goto(f"{running.url}/?label=never-known")
    row = page.locator(f'tr[data-task="{video}"]')
    expect(row.locator("[data-reason]")).to_have_text("", timeout=1)
    expect(row.locator("[data-reason]")).to_have_text("not found", timeout=LIVE_MS)
    badge = row.locator("[data-status]")
    live = (badge.text_content(), badge.get_attribute("class"))
    page.reload()
    reloaded = (badge.text_content(), badge.get_attribute("class"))
    assert live == reloaded == ("no status", "status t-ended")


def test_a_rows_poll_time_reads_the_same_live_and_after_a_reload(page: Page, running: Demo) -> None:
    """The time of a row's last poll, moved live, has the tooltip a reload gives it (the
    moment in UTC, in words) and the same machine-readable time, in the one timestamp format."""
    video = running.simulator.add_video("video_live_time", queued=2, steps=6)
    running.tracker.add([video], label="live-time")
    page.goto(f"{running.url}/?label=live-time")
    row = page.locator(f'tr[data-task="{video}"]')
    expect(row.locator("[data-status]")).not_to_have_text("completed")
    expect(row.locator("[data-status]")).to_have_text("completed", timeout=LIVE_MS)
    polled = row.locator("[data-polled] time")
    live = (polled.get_attribute("title"), polled.get_attribute("datetime"))
    page.reload()
    expect(row.locator("[data-status]")).to_have_text("completed")
    assert (polled.get_attribute("title"), polled.get_attribute("datetime")) == live
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", live[0] or ""), live
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", live[1] or ""), live


def test_the_api_documentation_opens_once_signed_in(browser: Browser, running: Demo) -> None:
    """/docs sends a browser without a session to the login page; signed in, it comes back
    and the documentation reads the OpenAPI document with the session."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{running.url}/docs")
    assert page.url == f"{running.url}/login?next=/docs"
    page.get_by_label("Server token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{running.url}/docs")
    expect(page.get_by_text("Register tasks")).to_be_visible(timeout=LIVE_MS)
    context.close()


def test_a_row_out_of_view_is_not_followed_and_is_current_once_scrolled_to(
    page: Page, running: Demo
) -> None:
    """The overview follows only the rows in view: a task below them finishes unseen, and
    shows completed once it is scrolled to, without a reload."""
    video = running.simulator.add_video("video_below", queued=2, steps=6)
    running.tracker.add([video], label="below")
    above = [running.simulator.add_video(queued=2, steps=2) for _ in range(30)]
    running.tracker.add(above, label="below")
    page.set_viewport_size({"width": 1280, "height": 500})
    page.goto(f"{running.url}/?label=below")
    page.evaluate("window.stayed = true")
    row = page.locator(f'tr[data-task="{video}"]')
    expect(row.locator("[data-status]")).not_to_have_text("completed")
    page.wait_for_function(
        "url => fetch(url).then(r => r.json()).then(t => t.finished)",
        arg=f"{running.url}/v1/tasks/{video}",
        polling=300,
        timeout=LIVE_MS,
    )
    # A followed row would have moved by now: its events come once a beat (3 s), and are drawn
    # at the next beat.
    page.wait_for_timeout(6500)
    expect(row.locator("[data-status]")).not_to_have_text("completed")
    row.scroll_into_view_if_needed()
    expect(row.locator("[data-status]")).to_have_text("completed", timeout=LIVE_MS)
    expect(row.locator("[data-reason]")).to_have_text("completed")
    expect(row.locator("[data-pct]")).to_have_text("100%")
    assert page.evaluate("window.stayed") is True


def test_the_overview_announces_new_tasks_soon_and_never_one_it_shows(
    page: Page, running: Demo
) -> None:
    """A task registered just before the overview loaded is on it and never announced, even
    when the counts the page came with were read before it was registered; tasks registered
    after it loaded are announced within two beats, with a link to the newest; `/` puts the
    cursor in the ID search."""
    summary = f"{running.url}/summary"
    page.request.get(summary)
    page.wait_for_timeout(300)
    page.request.get(summary)  # the counts, just read, are served as they are for 3 s
    running.tracker.add(["video_before_load"])
    page.goto(f"{running.url}/")
    expect(page.locator('tr[data-task="video_before_load"]')).to_have_count(1)
    total = running.tracker.database.reads.count(TaskFilter())
    all_tasks = page.locator("#counts .t-all .n")
    expect(all_tasks).to_have_text(f"{total:,}", timeout=LIVE_MS)
    page.wait_for_timeout(3500)  # a beat more
    expect(page.locator("#fresh")).to_be_hidden()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "f-q"
    running.tracker.add(["video_after_load_1", "video_after_load_2"])
    expect(page.locator("#fresh")).to_contain_text("2 new tasks", timeout=5000)
    page.locator("#fresh").get_by_role("link").click()
    expect(page.locator('tr[data-task="video_after_load_2"]')).to_have_count(1)


def test_a_task_page_shows_its_chart_and_timeline_and_follows_it_live(
    page: Page, running: Demo
) -> None:
    """A task's page, opened while the task runs, turns completed without a reload; its chart
    has a band per status, the progress line and the failed poll marked; its timeline says how
    long each status lasted."""
    video = running.simulator.script("video_live_page", showcase_script(polls=8))
    running.tracker.add([video])
    page.goto(f"{running.url}/tasks/{video}")
    page.evaluate("window.stayed = true")
    expect(page.locator(".summary [data-status]")).to_have_text("completed", timeout=LIVE_MS)
    chart = page.locator("svg.plot")
    expect(chart.locator("rect.band")).to_have_count(3)
    expect(chart.locator("path.line")).to_have_count(1)
    expect(chart.locator("line.mark")).to_have_count(1)
    assert "upstream busy" in (chart.locator("line.mark title").text_content() or "")
    sentence = page.locator(".sentence").text_content() or ""
    assert re.fullmatch(r"queued \d+ s, in progress \d+ s, completed\.", sentence), sentence
    rows = page.locator("section[aria-labelledby=h-timeline] tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("in_progress")
    expect(page.locator("table.snapshots tbody tr.has-error")).to_have_count(1)
    assert page.evaluate("window.stayed") is True


def test_registering_from_the_form_adds_tasks_and_an_invalid_id_adds_none(
    page: Page, running: Demo
) -> None:
    """The form names an invalid ID by its line and registers nothing; fixed, it registers
    every ID with the label and says so."""
    reads = running.tracker.database.reads
    page.goto(f"{running.url}/register")
    ids = page.get_by_label("Task IDs")
    ids.fill("video_form_1\nbad id\nvideo_form_2")
    page.get_by_label("Label").fill("from the form")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Line 2: invalid task ID 'bad id'")
    expect(ids).to_have_value("video_form_1\nbad id\nvideo_form_2")
    assert reads.task("video_form_1") is None and reads.task("video_form_2") is None
    ids.fill("video_form_1\nvideo_form_2")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.locator("#register-result")).to_contain_text("2 added")
    for task_id in ("video_form_1", "video_form_2"):
        task = reads.task(task_id)
        assert task is not None and task.label == "from the form"


def test_pages_fit_a_phones_width_without_scrolling_sideways(
    browser: Browser, running: Demo
) -> None:
    """At 375 px the overview, a task's page and the form are as wide as the screen."""
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    sign_in(page, running.url)
    for path in ("/", f"/tasks/{running.showcase}", "/register"):
        page.goto(running.url + path)
        page.wait_for_selector("main h1")
        width, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= viewport == 375, path
    context.close()


def test_the_docs_screenshots_are_taken_from_a_live_run(
    browser: Browser, running: Demo, tmp_path: Path
) -> None:
    """The function docs/make_screenshots.py runs takes the overview (wide and narrow) and
    the showcase task's page from this run, as PNGs of the viewport's width."""
    shots = take_screenshots(browser, running, tmp_path)
    assert [shot.name for shot in shots] == ["overview.png", "task.png", "overview-phone.png"]
    for shot, width in zip(shots, (1280, 1280, 375), strict=True):
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == width
