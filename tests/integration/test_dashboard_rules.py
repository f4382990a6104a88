"""The dashboard's script writes live updates by the server's rules, which it repeats in
JavaScript: a row's age, a status's tone, a poll's error in one line, a badge's words. Chromium
runs each over a table of inputs and must answer what the Python rule answers for the same
input, statuses among them that only Unicode case folding (Python's ``casefold``, not
JavaScript's ``toLowerCase``) or Python's idea of white space turns into a known word."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser import chromium, require_chromium
from tracker.core.models import FinishReason
from tracker.core.texts import age, error_line
from tracker.settings import Settings
from tracker.store import Database
from tracker.testing import RunningApp
from tracker.web.views import status_text, tone

require_chromium()

AGES_MS = [
    *(0, 1, 999, 1000, 59_999, 60_000, 61_000, 600_500, 3_599_999, 3_600_000, 3_660_000),
    *(86_399_999, 86_400_000, 90_061_000, 10 * 86_400_000 + 5, 123_456_789_012, -1, -90_000),
]
STATUSES = [
    *(None, "", " ", "queued", "QUEUED", " Completed ", "SUCCESS", "in_progress", "IN_PROGRESS"),
    *("not_start", "Pending", "canceled", "CANCELLED", "expired", "processing", "done\n"),
    "SUCCE\u00df",  # a sharp s: casefold ss (success), toLowerCase keeps it
    "\u017fuccess",  # a long s: casefold s
    "\ufb01nished",  # a ligature: casefold fi
    "FA\u0130LED",  # a dotted capital I: i and a combining dot either way, no known word
    "fa\u0131led",  # a dotless i is no i to either
    "\u212aILLED",  # a Kelvin sign: k to both
    "\x1ccompleted",  # a file separator: white space to Python's strip, not to trim
    "\x85pending",  # a next line: the same
    "\ufeffcompleted",  # a byte order mark: white space to trim, not to Python's strip
    "\u00a0queued\u3000",  # white space to both
]
REASONS = [None, *FinishReason, ""]
ERRORS = [
    *(None, "", "boom", 0, 42, True, ["a", 1], {}, {"code": 5}),
    *({"message": "upstream busy"}, {"message": None}, {"message": ""}, {"message": 503}),
    *({"message": 1.5}, {"message": True}, {"message": False}, {"message": ["a", 1]}),
    *({"message": {"detail": "x", "code": 7}}, {"message": "ünïcödé ß İ"}),
    {"type": "http_error", "message": "HTTP 502 from the relay"},
]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """The overview of an empty database, open without a token, in Chromium."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'tracker.db'}"
    database = Database.open(database_url)
    with RunningApp(Settings(database_url=database_url), database) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}/")
        page.wait_for_function("window.dashboardRules !== undefined")
        yield page
    database.close()


def in_browser(page: Page, rule: str, cases: list[list[Any]]) -> dict[str, Any]:
    """What the script's ``rule`` answers to each case, by the case's repr."""
    answers = page.evaluate(
        "([rule, cases]) => cases.map((args) => window.dashboardRules[rule](...args))",
        [rule, cases],
    )
    return dict(zip(map(repr, cases), answers, strict=True))


def test_a_rows_age_reads_as_the_servers(page: Page) -> None:
    cases = [[ms] for ms in AGES_MS]
    expected = {repr(case): age(timedelta(milliseconds=case[0])) for case in cases}
    assert in_browser(page, "age", cases) == expected


def test_a_status_has_the_servers_tone_whatever_its_case_and_spaces(page: Page) -> None:
    cases = [[status, reason] for status in STATUSES for reason in REASONS]
    expected = {repr(case): tone(*case) for case in cases}
    assert in_browser(page, "tone", cases) == expected


def test_a_polls_error_reads_as_the_servers_line(page: Page) -> None:
    cases = [[error, http_status] for error in ERRORS for http_status in (None, 404)]
    expected = {repr(case): error_line(*case) for case in cases}
    assert in_browser(page, "errorLine", cases) == expected


def test_a_badge_says_what_the_servers_says(page: Page) -> None:
    cases = [[status] for status in STATUSES]
    expected = {repr(case): status_text(case[0]) for case in cases}
    assert in_browser(page, "statusText", cases) == expected
