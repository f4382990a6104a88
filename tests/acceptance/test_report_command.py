"""`tracker report` as users run it, beside `GET /v1/report` on the same database (SQLite and
PostgreSQL): the same rows from both, as a table, JSON or CSV; bad input is one line (exit 2)
or a problem naming the parameter (422), and changes nothing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Run, assert_usage_error
from tests.report_fixture import SINCE, UNTIL, fill, fixture_rows
from tests.web import AUTH, TOKEN
from tracker import Secret
from tracker.settings import settings_from_keywords
from tracker.store import Database
from tracker.testing import RunningApp


@pytest.fixture
def filled(database_url: str) -> Iterator[str]:
    database = Database.open(database_url)
    fill(database, fixture_rows())
    database.close()
    yield database_url


@pytest.fixture
def api_url(filled: str) -> Iterator[str]:
    database = Database.open(filled)
    settings = replace(
        settings_from_keywords(None, database_url=filled),
        http_port=0,
        server_tokens=(Secret(TOKEN),),
    )
    with RunningApp(settings, database) as url:
        yield url
    database.close()


def test_the_command_and_the_api_give_the_same_rows(
    tracker: Run, filled: str, api_url: str
) -> None:
    """--json and GET /v1/report agree row for row, keys named as asked; --csv says the same
    with a header line."""
    window = ["--since", SINCE, "--until", UNTIL]
    printed = tracker("--db", filled, "report", *window, "--by", "model,day", "--json")
    assert printed.returncode == 0, printed.stderr
    rows = json.loads(printed.stdout)
    answer = httpx.get(
        f"{api_url}/v1/report",
        params={"since": SINCE, "until": UNTIL, "by": "model,day"},
        headers=AUTH,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == rows
    assert answer.json()["since"] == "2026-11-29T12:00:00Z"
    assert [(row["model"], row["day"], row["tasks"]) for row in rows] == [
        ("sora-2", "2026-12-04", 2),
        ("sora-2", "2026-12-05", 4),
        ("sora-2-pro", "2026-12-04", 13),
        (None, "2026-12-05", 1),
    ]
    # sora-2 on the first day: 100 s and 200 s (rank 1 of 2), waited 20 s and 30 s
    assert rows[0]["p50_seconds"] == 100.0 and rows[0]["queue_p50_seconds"] == 20.0

    written = tracker("--db", filled, "report", *window, "--by", "model,day", "--csv")
    assert written.returncode == 0, written.stderr
    table = list(csv.DictReader(io.StringIO(written.stdout)))
    assert list(table[0]) == list(rows[0])
    assert [row["tasks"] for row in table] == [str(row["tasks"]) for row in rows]
    assert table[3]["model"] == "" and table[0]["failure_rate"] == "0.0"


def test_on_a_terminal_it_is_a_table_with_the_window_above_it(tracker: Run, filled: str) -> None:
    shown = tracker("--db", filled, "report", "--since", SINCE, "--until", UNTIL, "--by", "model")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "Tasks registered from 2026-11-29 12:00 to 2026-12-06 12:00 (UTC)"
    assert lines[1].split()[:3] == ["model", "tasks", "unfin."]
    sora = lines[2].split()
    assert sora[:5] == ["sora-2", "6", "2", "3", "1"]
    assert "3m20s" in sora and "25.0" in sora  # the p50 of 200 s; 1 failed of 4
    empty = tracker("--db", filled, "report", "--since", "2020-01-01", "--until", "2020-02-01")
    assert empty.returncode == 0
    assert empty.stdout.splitlines()[1] == "None."


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--by", "model,colour"], ["--by 'model,colour'", "unknown key 'colour'", "model, size"]),
        (["--since", "2d", "--until", "3d"], ["--until '3d'", "is not after"]),
        (["--until", "2020-01-01"], ["--until '2020-01-01'", "7 days ago"]),
        (["--since", "2026"], ["--since '2026'", "an age needs a unit"]),
        (["--since", "yesterday"], ["--since 'yesterday'", "not a date"]),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    tracker: Run, workdir: Path, sqlite_url: str, flags: list[str], fragments: list[str]
) -> None:
    """Exit 2 with one line naming the flag, whether or not there is a database; the database
    is left as it was (a read never writes) and none is made where there is none."""
    assert_usage_error(tracker("report", *flags), *fragments)
    assert list(workdir.iterdir()) == []
    database = Database.open(sqlite_url)
    fill(database, fixture_rows())
    database.close()
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    before = path.read_bytes()
    assert_usage_error(tracker("--db", sqlite_url, "report", *flags), *fragments)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"by": "model,colour"}, "by"),
        ({"since": "2d", "until": "3d"}, "until"),
        ({"since": "soon"}, "since"),
        ({"until": "2026"}, "until"),
    ],
)
def test_bad_parameters_are_a_problem_naming_the_parameter(
    api_url: str, params: dict[str, str], parameter: str
) -> None:
    answer = httpx.get(f"{api_url}/v1/report", params=params, headers=AUTH)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert [error["parameter"] for error in problem["errors"]] == [parameter]
    assert problem["errors"][0]["detail"]
