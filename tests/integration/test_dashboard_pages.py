"""The dashboard's pages over a real uvicorn on 127.0.0.1 and SQLite, read as HTML without a
browser: who may see them, how a browser signs in and out, forms that change something and
their CSRF tokens, the headers every page carries, and the pages when the database is away."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.web import AUTH, TOKEN
from tracker import Secret
from tracker.settings import Settings
from tracker.settings.providers import Provider
from tracker.store import Database
from tracker.store.engine import create_engine
from tracker.testing import RunningApp
from tracker.web.auth import CSRF_FIELD, SESSION_COOKIE

Served = tuple[Database, str]


@pytest.fixture
def served(sqlite_url: str) -> Iterator[Served]:
    """`tracker serve` with a server token, on an SQLite file."""
    database = Database.open(sqlite_url)
    settings = Settings(database_url=sqlite_url, server_tokens=(Secret(TOKEN),))
    with RunningApp(settings, database) as url:
        yield database, url
    database.close()


@contextmanager
def signed_in(url: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client holding a session cookie from the login form, and its CSRF token."""
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/login", data={"token": TOKEN, "next": "/register"})
        assert answer.status_code == 303 and answer.headers["location"] == "/register"
        form = client.get("/register").text
        [csrf] = set(re.findall(rf'name="{CSRF_FIELD}" value="([^"]+)"', form))
        yield client, csrf


def test_pages_take_the_token_the_api_takes_and_send_browsers_to_login(served: Served) -> None:
    """A bearer token opens every page; without credentials a page answers 303 to the login
    page (the page asked for as `next`, no token anywhere in the URL) while the API answers
    401; a wrong bearer token is a 401 page."""
    database, url = served
    database.tasks.add_tasks(["video_a"], "L", datetime.now(UTC))
    with httpx.Client(base_url=url, timeout=30) as client:
        for path in ("/", "/tasks/video_a", "/register", "/summary", "/tasks/video_a/live"):
            assert client.get(path, headers=AUTH).status_code == 200, path
            away = client.get(path + "?state=failed")
            assert away.status_code == 303
            assert away.headers["location"].startswith("/login?next=" + path)
            assert TOKEN not in away.headers["location"]
        assert client.get("/v1/tasks").status_code == 401
        wrong = client.get("/", headers={"Authorization": "Bearer not-the-token-000000"})
        assert wrong.status_code == 401 and "text/html" in wrong.headers["content-type"]
        login = client.get("/login")
        assert login.status_code == 200 and 'type="password"' in login.text
        session = client.get("/session")
        assert session.status_code == 200 and session.json() == {"signed_in": False}


def test_signing_in_sets_a_strict_httponly_cookie_and_signing_out_drops_it(
    served: Served,
) -> None:
    """The login form takes a server token once and answers with a session cookie
    (HttpOnly, SameSite=Strict, not Secure over plain HTTP) that opens the pages and the API;
    a wrong token is refused on the page; signing out needs the CSRF token and clears it."""
    _database, url = served
    with httpx.Client(base_url=url, timeout=30) as client:
        refused = client.post("/login", data={"token": "nope", "next": "/"})
        assert refused.status_code == 401 and "not one of this server" in refused.text
        offsite = client.post("/login", data={"token": TOKEN, "next": "//evil.example/x"})
        assert offsite.headers["location"] == "/"
        cookie = offsite.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "secure" not in cookie.lower().replace("samesite", "")
        assert TOKEN not in cookie
    with signed_in(url) as (client, csrf):
        assert client.get("/").status_code == 200
        assert client.get("/v1/stats").status_code == 200
        assert client.get("/session").json() == {"signed_in": True}
        assert client.post("/logout").status_code == 403
        out = client.post("/logout", data={CSRF_FIELD: csrf})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert "max-age=0" in out.headers["set-cookie"].lower()
        assert client.get("/").status_code == 303


def test_forms_need_the_sessions_csrf_token(served: Served) -> None:
    """Registering and removing from a signed-in browser need the CSRF token of its session;
    without it, or from another site, nothing changes."""
    database, url = served
    with signed_in(url) as (client, csrf):
        missing = client.post("/register", data={"ids": "video_x"})
        assert missing.status_code == 403
        other_site = client.post(
            "/register",
            data={"ids": "video_x", CSRF_FIELD: csrf},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert other_site.status_code == 403
        assert database.reads.task("video_x") is None
        added = client.post("/register", data={"ids": "video_x\n\nvideo_y ", CSRF_FIELD: csrf})
        assert added.status_code == 200 and "2 added" in added.text
        assert client.post("/tasks/video_x/remove").status_code == 403
        removed = client.post("/tasks/video_x/remove", data={CSRF_FIELD: csrf})
        assert removed.status_code == 303
        assert removed.headers["location"] == "/tasks/video_x?removed=1"
    task = database.reads.task("video_x")
    assert task is not None and task.finish_reason == "removed"


def test_the_counts_say_how_many_tasks_came_after_the_newest_of_all_when_a_page_loaded(
    served: Served,
) -> None:
    """The first page of the overview (filtered or not) names the newest task of all for its
    script to ask the counts how many came after it: none at first, then each one registered
    since, "more than 100" past a hundred; a page further on asks nothing."""
    database, url = served
    start = datetime.now(UTC)
    database.tasks.add_tasks(["video_a"], "L", start)
    database.tasks.add_tasks(["video_b"], "M", start + timedelta(seconds=1))
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        first = client.get("/?label=L").text
        [asked] = re.findall(r'data-summary="(/summary[^"]*since=[^"]+)"', first)
        summary = html.unescape(asked)
        assert "data-new" not in client.get(summary).text
        database.tasks.add_tasks(["video_c"], None, start + timedelta(seconds=2))
        assert "1 new task since this page was loaded." in client.get(summary).text
        later = [f"video_n{number}" for number in range(100)]
        database.tasks.add_tasks(later, None, start + timedelta(seconds=3))
        assert "More than 100 new tasks since" in client.get(summary).text
        [older] = re.findall(r'href="/(\?[^"]*cursor=[^"]+)" rel="next"', client.get("/").text)
        further = client.get("/" + html.unescape(older)).text
        assert "since=" not in further and 'data-summary="/summary' in further


def test_an_invalid_line_is_named_and_nothing_is_registered(served: Served) -> None:
    """One invalid ID refuses the whole form: each bad line is named by its number, the text
    is given back to fix, and no task is written; a label over 1,000 characters is refused."""
    database, url = served
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        text = "video_ok\nbad id\n\nvideo/slash\n"
        answer = client.post("/register", data={"ids": text, "label": "L"})
        assert answer.status_code == 422
        assert "Nothing was registered" in answer.text
        assert "Line 2: invalid task ID" in answer.text and "Line 4: invalid task ID" in answer.text
        assert "video_ok\nbad id" in answer.text  # given back, escaped
        long_label = client.post("/register", data={"ids": "video_ok", "label": "x" * 1001})
        assert long_label.status_code == 422
    assert database.reads.task("video_ok") is None


def test_given_the_providers_file_the_form_registers_under_a_declared_provider(
    sqlite_url: str,
) -> None:
    """With a providers file the form offers its providers (`default` chosen when declared,
    else none, and one must be chosen); a name it does not declare is refused and nothing is
    registered, as no daemon would poll the tasks. Without the file there is no choice."""
    relay = Provider(name="relay-b", api_base="https://relay-b.example")
    both = (Provider(name="default", api_base="https://api.example"), relay)
    database = Database.open(sqlite_url)
    try:
        for providers in (both, (relay,), ()):
            settings = Settings(
                database_url=sqlite_url, server_tokens=(Secret(TOKEN),), providers=providers
            )
            with (
                RunningApp(settings, database) as url,
                httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
            ):
                form = client.get("/register").text
                options = re.findall(r"<option(?: selected)?>([^<]+)</option>", form)
                chosen = re.findall(r"<option selected>([^<]+)</option>", form)
                assert options == [p.name for p in providers]
                assert chosen == (["default"] if len(providers) == 2 else [])
                if providers:
                    refused = client.post(
                        "/register", data={"ids": "video_x", "provider": "relay-c"}
                    )
                    assert refused.status_code == 422
                    assert "unknown provider &#39;relay-c&#39;" in refused.text
                unnamed = client.post("/register", data={"ids": f"video_{len(providers)}"})
                assert unnamed.status_code == (422 if providers == (relay,) else 200)
                named = client.post(
                    "/register", data={"ids": f"video_b{len(providers)}", "provider": "relay-b"}
                )
                assert named.status_code == 200
        registered = {task.task_id: task.provider for task in database.reads.tasks()}
    finally:
        database.close()
    assert registered == {
        "video_2": "default",
        "video_b2": "relay-b",
        "video_b1": "relay-b",
        "video_0": "default",
        "video_b0": "relay-b",
    }


def test_pages_carry_a_strict_content_security_policy_and_run_no_inline_script(
    served: Served,
) -> None:
    """Every page says where scripts and styles may come from (our own files) and may not be
    framed; no page has an inline script or style, so the policy needs no exception; values
    are escaped."""
    database, url = served
    database.tasks.add_tasks(["video_q"], "<script>alert(1)</script>", datetime.now(UTC))
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        for path in ("/", "/tasks/video_q", "/register", "/login?next=/"):
            page = client.get(path)
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert page.headers["x-content-type-options"] == "nosniff"
            scripts = re.findall(r"<script([^>]*)>", page.text)
            assert all("src=" in s or "application/json" in s for s in scripts), path
            assert " style=" not in page.text and "<style" not in page.text
        overview = client.get("/").text
        assert "<script>alert(1)</script>" not in overview
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in overview


def test_without_server_tokens_pages_need_no_login_but_refuse_forms_from_other_sites(
    sqlite_url: str,
) -> None:
    """With no token configured (loopback only), pages open without signing in; a form posted
    from another site is refused all the same."""
    database = Database.open(sqlite_url)
    with (
        RunningApp(Settings(database_url=sqlite_url), database) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        assert client.get("/").status_code == 200
        assert client.get("/login").headers["location"] == "/"
        forged = client.post(
            "/register",
            data={"ids": "video_f"},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert forged.status_code == 403
        assert client.post("/register", data={"ids": "video_f"}).status_code == 200
    assert database.reads.task("video_f") is not None
    database.close()


def test_when_the_database_is_away_pages_say_so_and_try_again(sqlite_url: str) -> None:
    """A database that cannot be reached gives a 503 page that says so and reloads itself;
    the API answers a problem, not a crash."""
    unreachable = Database(create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none"))
    settings = replace(Settings(database_url=sqlite_url), http_port=0)
    with (
        RunningApp(settings, unreachable) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        page = client.get("/")
        assert page.status_code == 503
        assert "database cannot be reached" in page.text
        assert page.headers["retry-after"] == "5"
        assert '<meta http-equiv="refresh" content="5">' in page.text
        assert client.get("/tasks/x").status_code == 503
    unreachable.close()
