"""Every benchmark in benchmarks/ runs in its smoke mode (`--smoke`: each section at tiny sizes,
checking that it gave its figures), as a person measuring runs it: a renamed module or a
changed signature fails here, not in the hands of the next person who measures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import CHROMIUM, REQUIRE_BROWSER
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
# The scripts (scratch_database.py is a module the others import).
SCRIPTS = sorted(
    path.name for path in BENCHMARKS.glob("*.py") if '__name__ == "__main__"' in path.read_text()
)
# The benchmarks with sections on PostgreSQL (given --postgres), and those that drive Chromium.
POSTGRES = {
    "http_api.py",
    "idle.py",
    "million.py",
    "partitions.py",
    "report.py",
    "sorting.py",
    "throughput.py",
    "writes.py",
}
BROWSER = {"dashboard.py", "plain_chromium.py"}
SLOW = {"dashboard.py", "http_api.py", "latency.py", "million.py", "sorting.py", "throughput.py"}
VERDICT = "smoke: figures from every section run"


def test_the_lists_above_name_benchmarks_that_exist() -> None:
    assert (POSTGRES | BROWSER | SLOW).issubset(SCRIPTS)


@dataclass
class SmokeRun:
    process: subprocess.Popen[bytes]
    output: Path
    postgres: bool  # given --postgres

    def wait(self) -> tuple[int, str]:
        code = self.process.wait(timeout=600)
        return code, self.output.read_text(errors="replace")


def postgres_server() -> str | None:
    """The test server's URL (the benchmarks create databases of their own on it), or None
    when it cannot be reached."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            connect_timeout=5,
        ).close()
    except psycopg.Error:
        return None
    return POSTGRES_URL


@pytest.fixture(scope="module")
def smoke_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, SmokeRun]]:
    """The smoke runs of the benchmarks whose tests were selected, started together: most of
    each run is waiting (for servers to start, for windows to pass), so together they take
    about as long as the longest alone, where one after the other they took minutes."""
    selected = {
        str(item.callspec.params["script"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.module is request.module
        and item.originalname == "test_smoke_mode_gives_every_figure"
    }
    server = postgres_server() if selected & POSTGRES else None
    runs = {}
    for script in sorted(selected):
        directory = tmp_path_factory.mktemp(script.removesuffix(".py"))
        command = [sys.executable, str(BENCHMARKS / script), "--smoke"]
        if script in POSTGRES and server:
            command += ["--postgres", server]
        output = directory / "output.txt"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                command, cwd=directory, stdout=sink, stderr=subprocess.STDOUT
            )
        runs[script] = SmokeRun(process, output, "--postgres" in command)
    yield runs
    for run in runs.values():
        if run.process.poll() is None:  # a test that failed before waiting for it
            run.process.kill()
            run.process.wait()


@pytest.mark.parametrize(
    "script",
    [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else []) for name in SCRIPTS],
)
def test_smoke_mode_gives_every_figure(script: str, smoke_runs: dict[str, SmokeRun]) -> None:
    run = smoke_runs[script]
    code, output = run.wait()
    assert code == 0, output
    assert VERDICT in output, output
    # What a section lacks (the server, the browser, a package) it says on a line of its own.
    skipped = [line for line in output.splitlines() if "skipped" in line]
    if script in POSTGRES and not run.postgres:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (TESTS_REQUIRE_POSTGRES=1): {skipped}")
    elif script in BROWSER and not CHROMIUM.exists():
        if REQUIRE_BROWSER:
            pytest.fail(f"Chromium is required (TESTS_REQUIRE_BROWSER=1): {skipped}")
    else:
        assert not skipped, output
