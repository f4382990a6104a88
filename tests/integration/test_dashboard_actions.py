"""The dashboard's actions in a real browser (Debian's Chromium driven by Playwright) against a
daemon polling the simulator and serving the app on SQLite: rows ticked and acted on, every
task a filter matches selected at once, each behind a page that asks to confirm; a task's
"Poll now" and "Reopen" buttons and the reopening in its timeline; a form without its CSRF
token refused with nothing changed; all of it at a phone's width; every filter the overview
has carried by the bulk form and its confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import (  # noqa: F401 (module_browser: the browser fixture)
    module_browser,
    require_chromium,
    signed_in,
    wait_for,
)
from tests.web import TOKEN, daemon_running
from tracker import Secret, Tracker
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import TaskFilter
from tracker.simulator import Reply, Simulator, SimulatorServer

require_chromium()

SIMULATOR_TOKEN = "sk-dashboard-actions"
SLOW = 30  # tasks that stay queued, polled once an hour
# The overview's fields that order and page the tasks; every other one chooses tasks.
VIEW = {"sort", "order", "limit"}


@dataclass
class Running:
    url: str
    tracker: Tracker


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A daemon polling every hour, so that a poll is one a person asked for."""
    database = tmp_path_factory.mktemp("actions") / "tracker.db"
    simulator = Simulator(token=SIMULATOR_TOKEN)
    slow = [simulator.add_video(f"video_slow_{n:02}", queued=10_000) for n in range(SLOW)]
    busy = simulator.script(
        "video_busy", [Reply(status=503, raw=b'{"error": {"message": "busy"}}')]
    )
    with SimulatorServer(simulator) as api_base:
        tracker = Tracker(
            database_url=f"sqlite:///{database}",
            api_base=api_base,
            token=SIMULATOR_TOKEN,
            poll_interval=3600,
            request_timeout=5,
        )
        tracker.settings = replace(tracker.settings, http_port=0, server_tokens=(Secret(TOKEN),))
        with tracker, daemon_running(tracker):
            port = wait_for(lambda: tracker.daemon.ports.get("--http-port"))
            tracker.add(slow, label="slow")
            tracker.add([f"video_bulk_{n:02}" for n in range(SLOW)], label="bulk")
            tracker.add(["video_ended", "video_kept"], label="single")
            tracker.remove(["video_ended"])
            tracker.add([busy], label="busy")
            # A second provider's task (never polled: no such provider), so the overview
            # offers to filter by provider.
            tracker.add(["video_elsewhere"], label="elsewhere", provider="spare")
            wait_for(lambda: all(polls(tracker, task_id) == 1 for task_id in [*slow, busy]))
            yield Running(f"http://127.0.0.1:{port}", tracker)


@pytest.fixture
def page(browser: Browser, running: Running) -> Iterator[Page]:
    with signed_in(browser, running.url) as page:
        yield page


def polls(tracker: Tracker, task_id: str) -> int:
    task = tracker.database.reads.task(task_id)
    return task.poll_count if task is not None else -1


def test_rows_ticked_are_polled_now_once_confirmed(page: Page, running: Running) -> None:
    """Ticking two rows says so and enables the actions; "Poll now…" asks to confirm, naming
    them; confirmed, the daemon polls both at once although their next poll is an hour away."""
    page.goto(f"{running.url}/?label=slow")
    buttons = page.locator("#bulk button[name=action]")
    expect(buttons.first).to_be_disabled()
    chosen = ["video_slow_03", "video_slow_07"]
    for task_id in chosen:
        page.get_by_label(f"Select {task_id}").check()
    expect(page.locator("#chosen")).to_have_text("2 chosen")
    page.locator("#bulk-poll").click()
    expect(page.locator("main h1")).to_have_text("Poll now 2 tasks?")
    expect(page.locator(".confirm .ids")).to_contain_text("video_slow_03")
    assert polls(running.tracker, chosen[0]) == 1  # nothing done before the confirmation
    page.locator("#confirm-bulk").click()
    expect(page.locator("#bulk-result")).to_contain_text("2 tasks made due now of 2 chosen")
    wait_for(lambda: all(polls(running.tracker, task_id) == 2 for task_id in chosen), 5)
    assert polls(running.tracker, "video_slow_04") == 1


def test_select_all_matching_removes_every_task_the_filter_matches(
    page: Page, running: Running
) -> None:
    """With 25 rows a page, "Select all 30 matching" ticks and locks the rows; the confirmation
    counts 30; confirmed, all 30 are removed, not only the page's, and nothing else."""
    page.goto(f"{running.url}/?label=bulk&limit=25")
    page.get_by_label("Select all 30 matching").check()
    expect(page.get_by_label("Select video_bulk_29")).to_be_disabled()
    expect(page.get_by_label("Select video_bulk_29")).to_be_checked()
    page.locator("#bulk-remove").click()
    expect(page.locator("main h1")).to_have_text("Remove 30 tasks?")
    expect(page.locator(".confirm")).to_contain_text("with the label “bulk”")
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator("main h1")).to_have_text("Tasks")
    reads = running.tracker.database.reads
    assert reads.count(TaskFilter(label="bulk", finished=False)) == SLOW
    page.get_by_label("Select all 30 matching").check()
    page.locator("#bulk-remove").click()
    page.locator("#confirm-bulk").click()
    expect(page.locator("#bulk-result")).to_contain_text("30 tasks removed of 30 chosen")
    assert reads.count(TaskFilter(label="bulk", finish_reason="removed")) == SLOW
    assert reads.count(TaskFilter(label="slow", finished=False)) == SLOW


def test_a_task_page_reopens_an_ended_task_and_its_timeline_says_so(
    page: Page, running: Running
) -> None:
    """A removed task's page offers "Reopen" (no "Poll now"); pressed, the task is watched
    again, its timeline has a line for the reopening, and "Poll now" is offered instead."""
    page.goto(f"{running.url}/tasks/video_ended")
    expect(page.locator("#poll-now")).to_have_count(0)
    page.locator("#reopen-task").click()
    expect(page.locator("p.notice[role=status]")).to_contain_text("Reopened")
    expect(page.locator("#h-timeline + p + .table-wrap")).to_contain_text("reopened")
    expect(page.locator("#h-timeline + p + .table-wrap")).to_contain_text("watched again")
    expect(page.locator("#poll-now")).to_be_visible()
    task = running.tracker.database.reads.task("video_ended")
    assert task is not None and not task.finished and task.reopened_at is not None


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    page: Page, running: Running
) -> None:
    """The bulk form with its CSRF token taken out is refused (403) at the confirmation, and
    so is a confirmed post without it; the task stays as it was."""
    page.goto(f"{running.url}/?label=single")
    page.get_by_label("Select video_kept").check()
    page.evaluate("document.querySelector('#bulk input[name=csrf_token]').remove()")
    page.locator("#bulk-remove").click()
    expect(page.locator("main h1")).to_have_text("Refused")
    answer = page.request.post(
        f"{running.url}/bulk",
        form={"action": "remove", "id": "video_kept", "confirmed": "1"},
    )
    assert answer.status == 403
    task = running.tracker.database.reads.task("video_kept")
    assert task is not None and not task.finished


def form_values(page: Page, form: str) -> dict[str, str]:
    return dict(page.evaluate(f"[...new FormData(document.querySelector('{form}'))]"))


def test_the_bulk_form_carries_every_filter_the_overview_has(page: Page, running: Running) -> None:
    """With every filter of the overview set, the bulk form and then its confirmation carry
    each with its value, and "Cancel" goes back to the same filters: a filter the bulk form
    forgot would act on more tasks than those shown."""
    chosen = {
        "state": "unfinished",
        "label": "busy",
        "q": "video_bu",
        "provider": DEFAULT_PROVIDER,
        "error": "busy",
    }
    page.goto(f"{running.url}/?{urlencode(chosen)}")
    expect(page.get_by_label("Select video_busy")).to_be_visible()
    shown = {
        name: value for name, value in form_values(page, "form.filters").items() if name not in VIEW
    }
    assert shown == chosen  # every filter the overview has is set here
    assert form_values(page, "#bulk").items() >= shown.items()
    page.get_by_label("Select all 1 matching").check()
    page.locator("#bulk-poll").click()
    expect(page.locator("main h1")).to_have_text("Poll now 1 task?")
    assert form_values(page, ".confirm-form").items() >= shown.items()
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator("main h1")).to_have_text("Tasks")
    assert parse_qs(urlsplit(page.url).query) == {name: [value] for name, value in chosen.items()}


def test_the_actions_fit_a_phones_width(browser: Browser, running: Running) -> None:
    """At 375 px the overview with its actions, the confirmation and a task's page with its
    buttons are as wide as the screen."""
    phone = {"viewport": {"width": 375, "height": 740}}
    with signed_in(browser, running.url, **phone) as page:
        page.goto(f"{running.url}/?label=slow")
        page.get_by_label("Select video_slow_01").check()
        expect(page.locator("#bulk-reopen")).to_be_visible()
        widths = [page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")]
        page.locator("#bulk-reopen").click()
        expect(page.locator("#confirm-bulk")).to_be_visible()
        widths.append(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
        page.goto(f"{running.url}/tasks/video_slow_01")
        expect(page.locator("#poll-now")).to_be_visible()
        widths.append(page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]"))
    assert all(width <= viewport == 375 for width, viewport in widths), widths
