"""How fast tracker watches video tasks, beside what users run today, measured in one run.

    pip install -e '.[postgres,test]'
    python benchmarks/throughput.py                  # every section, about ten minutes
    python benchmarks/throughput.py --only peers,throughput
    python benchmarks/throughput.py --only peers,throughput,postgres --server node --postgres URL
    python benchmarks/throughput.py --smoke          # every section in seconds (the tests')

The simulated API runs in a process of its own (`python -m tracker.simulator`, or with
`--server node` benchmarks/video_server.mjs, which costs the machine less per request), serving
videos that stay in progress, so every poll is a full round trip and a row written. With the
peers section, the daemon's rates are also given as a share of raw aiohttp's. Sections:

- simulator:  the simulator alone, driven by the fastest client here: it must not be the limit;
- peers:      what users run today (stock httpx, the OpenAI SDK, httpx over aiohttp, raw aiohttp)
              and tracker's own client, polling only (no database);
- throughput: one `tracker run` on SQLite offered far more due work than it can do (4,000 tasks
              every 0.2 s): polls per second, every answered poll checked against the rows
              written, and a warning if the daemon kept up (then the figure is the offer's);
- providers:  the same, the tasks dealt among 4 providers of the one API (a providers file),
              each with a quarter of the requests in flight;
- postgres:   the same on PostgreSQL (with --postgres URL of a server to create a database on),
              and the server's CPU time a poll when it runs on this machine (read from
              /proc: its processes, the ended backends included);
- lateness:   at 40% of the throughput measured above (of 2,000/s when that section is not
              run), tasks every 2 s: how late polls come;
- memory:     20,000 watched tasks: peak RSS of the daemon;
- history:    the same daemon, twice, on databases holding 0, 0.5 and 5 million snapshots, and
              `history`.

Raw aiohttp's run and each saturated daemon's window also give the share of the machine's CPU
time its host took meanwhile (`steal` in /proc/stat, on a virtual machine): the rates of a run
with much of it were measured on a slower machine than the others'. With the peers section, the
throughput and postgres sections measure raw aiohttp again right after their daemon and give
the daemon's rate as a share of that too: raw aiohttp's rate moves more between runs than the
daemon's does. The database's part of a poll alone, without HTTP, is measured by writes.py;
`tracker add --file`, `list` and `history` at a million tasks by million.py.

--smoke runs every section at tiny sizes with windows of a second or less and checks that each
gave its figures, not what they are; the postgres section runs only with --postgres.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from results import finish, options, parse, report
from scratch_database import postgres_database

TOKEN = "bench-token"
# Saturation: this many tasks due every SATURATING_INTERVAL seconds is far more than one daemon
# polls, so the figure is the daemon's capacity, not the offer.
SATURATING_TASKS = 4_000
SATURATING_INTERVAL = 0.2
PRELOADED = 20_000  # videos the simulator serves; more tasks than this would see 404s
SECTIONS = (
    "simulator",
    "peers",
    "throughput",
    "providers",
    "postgres",
    "lateness",
    "memory",
    "history",
)
# The providers section's: the same offer split among this many providers of one API, each
# with its share of the 32 requests in flight the single provider has.
PROVIDERS = 4
TRACKER = [sys.executable, "-m", "tracker"]


# The simulator, in its own process


@contextmanager
def simulator(preload: int, server: str = "python") -> Iterator[str]:
    """The simulated API in a process of its own (``server`` "python": tracker's simulator), or
    a fast stand-in for its status requests ("node": benchmarks/video_server.mjs, which costs the
    machine less per request, so that the clients beside each other are what limits them)."""
    if server == "node":
        command = ["node", str(Path(__file__).with_name("video_server.mjs")), TOKEN]
    else:
        command = [
            sys.executable,
            "-m",
            "tracker.simulator",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--preload",
            str(preload),
        ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    url = line.split(" at ", 1)[1].split(" ", 1)[0]
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # seen on a loaded machine: the figures are taken
            process.kill()
            process.wait()


def served(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_simulator/stats") as response:
        return int(json.load(response)["requests"])


def wait_until_up(url: str, seconds: float = 30) -> None:
    """Until tracker's HTTP service at ``url`` answers ``/healthz``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError is one)
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.1)


# Clients polling without a database


async def rate(one: Callable[[int], Awaitable[object]], in_flight: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(start: int) -> None:
        nonlocal done
        index = start
        while time.perf_counter() < stop:
            await one(index)
            done += 1
            index += in_flight

    began = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(in_flight)))
    return done / (time.perf_counter() - began)


def video(index: int, tasks: int) -> str:
    return f"video_{index % tasks}"


def peers(url: str, tasks: int, seconds: float) -> float | None:
    """Each client's rate, reported; raw aiohttp's, the ceiling the daemon is held to (None
    when aiohttp is not installed)."""
    import httpx

    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def stock_httpx() -> float:
        async with httpx.AsyncClient(
            base_url=url,
            headers=headers,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        ) as client:

            async def one(i: int) -> None:
                (await client.get(f"/v1/videos/{video(i, tasks)}")).json()

            return await rate(one, 32, seconds)

    report("peers", "stock httpx.AsyncClient, 32 in flight", f"{asyncio.run(stock_httpx()):,.0f}/s")
    try:
        import openai
    except ImportError:
        report("peers", "OpenAI SDK", "skipped: not installed (pip install -e '.[test]')")
    else:
        sync_client = openai.OpenAI(api_key=TOKEN, base_url=f"{url}/v1", max_retries=0)
        done, stop = 0, time.perf_counter() + seconds
        began = time.perf_counter()
        while time.perf_counter() < stop:
            sync_client.videos.retrieve(video(done, tasks))
            done += 1
        report(
            "peers",
            "OpenAI SDK, client.videos.retrieve in a plain loop",
            f"{done / (time.perf_counter() - began):,.0f}/s",
        )

        async def async_openai() -> float:
            client = openai.AsyncOpenAI(api_key=TOKEN, base_url=f"{url}/v1", max_retries=0)

            async def one(i: int) -> None:
                await client.videos.retrieve(video(i, tasks))

            try:
                return await rate(one, 32, seconds)
            finally:
                await client.close()

        report("peers", "AsyncOpenAI, 32 in flight", f"{asyncio.run(async_openai()):,.0f}/s")
    try:
        import aiohttp  # noqa: F401  (raw_aiohttp_rate's, checked here with its twin's)
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        report("peers", "aiohttp peers", "skipped: not installed (pip install -e '.[test]')")
        raw = None
    else:

        async def httpx_over_aiohttp() -> float:
            transport = AiohttpTransport()
            async with httpx.AsyncClient(
                base_url=url, headers=headers, transport=transport
            ) as client:

                async def one(i: int) -> None:
                    (await client.get(f"/v1/videos/{video(i, tasks)}")).json()

                return await rate(one, 32, seconds)

        report(
            "peers",
            "httpx.AsyncClient over httpx_aiohttp.AiohttpTransport, 32",
            f"{asyncio.run(httpx_over_aiohttp()):,.0f}/s",
        )

        raw = raw_aiohttp_rate("peers", "raw aiohttp, 64 in flight", url, tasks, seconds)
    report(
        "peers",
        "tracker's client (httpx over tracker.http.transport, uvloop), 32",
        f"{tracker_client_rate(url, tasks, seconds):,.0f}/s",
    )
    return raw


def raw_aiohttp_rate(section: str, what: str, url: str, tasks: int, seconds: float) -> float:
    """Raw aiohttp's rate with 64 in flight, no database: the wire's cost, which the goals
    hold the daemon's rate against; reported as ``what``, with the share of the machine its
    host took meanwhile."""
    import aiohttp

    async def raw_aiohttp() -> float:
        connector = aiohttp.TCPConnector(limit=64)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

            async def one(i: int) -> None:
                async with session.get(f"{url}/v1/videos/{video(i, tasks)}") as response:
                    await response.json()

            return await rate(one, 64, seconds)

    stolen, began = stolen_seconds(), time.monotonic()
    raw = asyncio.run(raw_aiohttp())
    taken = stolen_share(stolen, time.monotonic() - began)
    report(section, what, f"{raw:,.0f}/s")
    report(section, "  CPU taken by the machine's host meanwhile (steal)", f"{taken:.0%}")
    return raw


def tracker_client_rate(url: str, tasks: int, seconds: float, in_flight: int = 32) -> float:
    from tracker.core.eventloop import run_event_loop
    from tracker.http.client import VideoClient
    from tracker.settings import Secret

    async def go() -> float:
        async with VideoClient(url, Secret(TOKEN), timeout=30, max_connections=in_flight) as client:

            async def one(i: int) -> None:
                result = await client.fetch(video(i, tasks))
                assert result.video is not None, result.error

            return await rate(one, in_flight, seconds)

    return run_event_loop(go())


# The daemon


def environment(
    url: str, database: Path | str, interval: float, config: Path | None = None
) -> dict[str, str]:
    """The daemon's settings; ``database`` is an SQLite file or a PostgreSQL URL; ``config``
    a providers file."""
    return {
        **os.environ,
        "TRACKER_DATABASE_URL": database if isinstance(database, str) else f"sqlite:///{database}",
        "TRACKER_API_BASE": url,
        "TRACKER_API_TOKEN": TOKEN,
        "TRACKER_POLL_INTERVAL": str(interval),
        **({"TRACKER_CONFIG": str(config)} if config else {}),
    }


def providers_file(directory: Path, url: str, count: int) -> Path:
    """``count`` providers (p0, p1, …) of the one API, sharing its 32 requests in flight."""
    path = directory / "providers.toml"
    path.write_text(
        "".join(
            f'[providers.p{index}]\napi_base = "{url}"\ntoken_env = "TRACKER_API_TOKEN"\n'
            f"concurrency = {32 // count}\n\n"
            for index in range(count)
        )
    )
    return path


def register(env: dict[str, str], directory: Path, tasks: int, providers: int = 1) -> float:
    """``tasks`` tasks, dealt in turn to the providers p0, p1, … when there are several."""
    began = time.perf_counter()
    for index in range(providers):
        ids = directory / "ids.txt"
        ids.write_text("".join(f"video_{i}\n" for i in range(index, tasks, providers)))
        provider = ["--provider", f"p{index}"] if providers > 1 else []
        command = [*TRACKER, "add", *provider, "--file", str(ids)]
        subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - began


def rows(database: Path | str) -> int:
    """The newest snapshot's id: how many were written (none is deleted while measuring)."""
    query = "SELECT COALESCE(MAX(id), 0) FROM snapshots"
    if isinstance(database, str):  # a PostgreSQL URL
        import psycopg

        with psycopg.connect(database.replace("postgresql+psycopg", "postgresql")) as server:
            newest = server.execute(query).fetchone()
        assert newest is not None  # an aggregate always has its row
        return int(newest[0])
    connection = sqlite3.connect(database)
    try:
        return int(connection.execute(query).fetchone()[0])
    finally:
        connection.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_stat(process: Path) -> list[str]:
    """The fields of ``process``'s /proc/PID/stat after its name (which may hold spaces):
    state, parent, …, user and system time at 11 and 12, its ended children's at 13 and 14."""
    return (process / "stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User and system time of the process so far."""
    fields = process_stat(Path(f"/proc/{pid}"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def local_postmaster(database_url: str) -> int | None:
    """The process ID of the PostgreSQL server ``database_url`` names, when it runs on this
    machine and says where its files are (to a superuser, or a role with pg_read_all_settings),
    and they can be read here (its postmaster.pid); None otherwise."""
    import psycopg

    if urlsplit(database_url).hostname not in {None, "localhost", "127.0.0.1", "::1"}:
        return None
    try:
        with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as server:
            found = server.execute(
                "SELECT current_setting('data_directory'), pg_backend_pid()"
            ).fetchone()
            assert found is not None  # a SELECT without FROM has its row
            directory, backend = found
            postmaster = int((Path(directory) / "postmaster.pid").read_text().split()[0])
            # The server spoken to, not another whose files are at that path here.
            if int(process_stat(Path(f"/proc/{backend}"))[1]) != postmaster:
                return None
            return postmaster
    except (psycopg.Error, OSError, ValueError, IndexError):
        return None


def server_cpu_seconds(postmaster: int) -> float:
    """User and system time so far of the server: its postmaster, with that of its children
    gone (the ended backends), and the processes it runs now."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        try:
            fields = process_stat(entry)
        except OSError:  # not a process, or one gone meanwhile
            continue
        if entry.name == str(postmaster) or fields[1] == str(postmaster):
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def stolen_seconds() -> float:
    """CPU time the machine's host has taken from it so far, on a virtual machine: the
    ``steal`` column of /proc/stat, summed over its CPUs."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def stolen_share(since: float, seconds: float) -> float:
    """The share of the machine's CPU time its host took over the last ``seconds``, since
    ``stolen_seconds()`` gave ``since``: what neither the daemon nor anything else here had."""
    return (stolen_seconds() - since) / (seconds * (os.cpu_count() or 1))


@contextmanager
def running(command: Sequence[str], **options: Any) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in a process of its own for the block, then stopped as a user stops it
    (SIGTERM; killed if still there 30 s later), even when the block fails. It must have ended
    well: a daemon that could not start fails the benchmark rather than giving 0/s."""
    process = subprocess.Popen(list(command), **options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise ended(process)


def ended(process: subprocess.Popen[bytes]) -> RuntimeError:
    return RuntimeError(f"{process.args!r} ended with exit status {process.returncode}")


def run_daemon(
    url: str,
    database: Path | str,
    interval: float,
    warmup: float,
    window: float,
    options: Sequence[str] = (),
    config: Path | None = None,
) -> dict[str, float]:
    """Run `tracker run OPTIONS` (given the providers file ``config``) and measure a steady
    window; stop it; check rows against requests."""
    env = environment(url, database, interval, config)
    rows_before, served_before = rows(database), served(url)
    postmaster = local_postmaster(database) if isinstance(database, str) else None
    with running([*TRACKER, "-q", "run", *options], env=env) as daemon:
        # The warm-up counts from the first poll written: starting (imports, the app) can take
        # seconds on a loaded machine, and is not what the window measures.
        while rows(database) == rows_before:
            if daemon.poll() is not None:
                raise ended(daemon)
            time.sleep(0.1)
        time.sleep(warmup)
        start_rows, start_time, start_stolen = rows(database), time.monotonic(), stolen_seconds()
        start_cpu = cpu_seconds(daemon.pid)
        start_server = server_cpu_seconds(postmaster) if postmaster else 0.0
        time.sleep(window)
        end_rows, end_time = rows(database), time.monotonic()
        stolen = stolen_share(start_stolen, end_time - start_time)
        end_cpu = cpu_seconds(daemon.pid)
        end_server = server_cpu_seconds(postmaster) if postmaster else 0.0
        rss = peak_rss_mb(daemon.pid)
    written = rows(database) - rows_before
    answered = served(url) - served_before
    polls = max(1, end_rows - start_rows)
    server: dict[str, float] = {}
    if postmaster:
        server["server_cpu_ms_per_poll"] = (end_server - start_server) * 1000 / polls
    return {
        "rate": (end_rows - start_rows) / (end_time - start_time),
        "stolen": stolen,
        # CPU per poll moves less than polls/s with what else the machine runs.
        "cpu_ms_per_poll": (end_cpu - start_cpu) * 1000 / polls,
        **server,
        "rss": rss,
        "written": written,
        "answered": answered,
    }


def saturate(
    url: str,
    database: Path | str,
    directory: Path,
    window: float,
    registered: bool = False,
    options: Sequence[str] = (),
    warmup: float = 3.0,
    providers: int = 1,
) -> dict[str, float]:
    """The daemon (`tracker run OPTIONS`) offered far more due work than it can do: its
    capacity; the tasks of ``providers`` providers of the API, if more than one."""
    config = providers_file(directory, url, providers) if providers > 1 else None
    env = environment(url, database, SATURATING_INTERVAL, config)
    if not registered:
        register(env, directory, SATURATING_TASKS, providers)
    result = run_daemon(url, database, SATURATING_INTERVAL, warmup, window, options, config)
    offered = SATURATING_TASKS / SATURATING_INTERVAL
    if result["rate"] > 0.9 * offered:
        print(f"  warning: the daemon kept up with the {offered:,.0f}/s offered: offer more")
    return result


def lateness(database: Path, interval: float, since: float = 0.0) -> list[float]:
    """Each gap between two polls of a task minus the interval, for the polls from ``since``
    (seconds since the epoch) on."""
    connection = sqlite3.connect(database)
    late: list[float] = []
    previous: dict[str, float] = {}
    query = (
        "SELECT task_id, (julianday(polled_at) - 2440587.5) * 86400.0 "
        "FROM snapshots ORDER BY polled_at"
    )
    for task_id, seconds in connection.execute(query):
        if task_id in previous and seconds >= since:
            late.append(seconds - previous[task_id] - interval)
        previous[task_id] = seconds
    connection.close()
    return late


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fill_history(database: Path, tasks: int, total: int) -> None:
    """Add ``total`` finished-looking snapshots spread over the registered tasks."""
    connection = sqlite3.connect(database)
    body = '{"object":"video","status":"in_progress","progress":50}'
    per_task = total // tasks
    batch = []
    with connection:
        for index in range(tasks):
            for poll in range(per_task):
                stamp = (
                    f"2026-01-{1 + poll // 86400 % 28:02d} {poll // 3600 % 24:02d}:"
                    f"{poll // 60 % 60:02d}:{poll % 60:02d}.000000"
                )
                batch.append((f"video_{index}", stamp, 200, "in_progress", 50, body, 0, 5.0))
            if len(batch) >= 200_000:
                connection.executemany(
                    "INSERT INTO snapshots (task_id, polled_at, http_status, status, progress, "
                    "body, finished, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    batch,
                )
                batch.clear()
        if batch:
            connection.executemany(
                "INSERT INTO snapshots (task_id, polled_at, http_status, status, progress, "
                "body, finished, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
    connection.close()


def history_latency_ms(database: Path, task_id: str) -> tuple[float, float, int]:
    """The median time of reading ``task_id``'s history, of the `tracker history` command,
    and how many snapshots it has."""
    from tracker import Tracker

    with Tracker(database_url=f"sqlite:///{database}") as tracker:
        tracker.history(task_id)  # connect and warm the cache, as a running system is
        timings = []
        for _ in range(20):
            began = time.perf_counter()
            snapshots = tracker.history(task_id)
            timings.append((time.perf_counter() - began) * 1000)
    began = time.perf_counter()
    subprocess.run(
        [*TRACKER, "--db", f"sqlite:///{database}", "history", task_id],
        check=True,
        capture_output=True,
    )
    command_ms = (time.perf_counter() - began) * 1000
    assert snapshots
    return statistics.median(timings), command_ms, len(snapshots)


# The sections


def daemon_costs(section: str, result: dict[str, float]) -> None:
    """What the daemon's window cost it (CPU time a poll moves less with what else the
    machine runs than polls/s do), and what the machine's host took meanwhile."""
    cpu = f"{result['cpu_ms_per_poll'] * 1000:.0f} µs"
    report(section, "  CPU time a poll (the daemon's threads)", cpu)
    if "server_cpu_ms_per_poll" in result:
        report(
            section,
            "  the server's CPU time a poll (its processes)",
            f"{result['server_cpu_ms_per_poll'] * 1000:.0f} µs",
        )
    report(
        section, "  CPU taken by the machine's host meanwhile (steal)", f"{result['stolen']:.0%}"
    )


def of_raw(section: str, rate: float, raw: float | None, url: str, seconds: float) -> None:
    """The daemon's rate as a share of raw aiohttp's in the same run (no database, the wire's
    cost only), when the peers section measured it; and of raw aiohttp's measured again right
    after the daemon, whose own rate moves less from run to run than raw aiohttp's does."""
    if raw:
        report(section, "  the same, of raw aiohttp's rate in this run", f"{rate / raw:.0%}")
        after = raw_aiohttp_rate(section, "  raw aiohttp right after it", url, 4_000, seconds)
        report(section, "  the same, of raw aiohttp's rate right after it", f"{rate / after:.0%}")


@dataclass(frozen=True)
class Scale:
    """How long and how big the sections are: a measurement's, or smoke mode's."""

    window: float  # each saturated daemon run's measuring window
    warmup: float  # from a daemon's first poll written to its window
    client_seconds: float  # each client's run in the simulator and peers sections
    lateness_interval: float
    lateness_window: float
    memory_tasks: int
    memory_interval: float
    memory_window: float
    history_stored: tuple[int, ...]  # snapshots already stored, a database each
    history_runs: int  # daemon runs on each


def measuring(seconds: float) -> Scale:
    return Scale(
        window=seconds,
        warmup=3.0,
        client_seconds=5.0,
        lateness_interval=2.0,
        lateness_window=max(seconds, 20),
        memory_tasks=20_000,  # the size the goal of at most 150 MB is set for
        memory_interval=10.0,
        memory_window=max(seconds, 12),
        # Two runs back to back on each database: in the first, tasks' new index entries may
        # still share pages with their neighbours'; by the second they cannot.
        history_stored=(0, 500_000, 5_000_000),
        history_runs=2,
    )


SMOKE = Scale(
    window=0.5,
    warmup=0.3,
    client_seconds=0.2,
    lateness_interval=0.5,
    lateness_window=1.0,
    memory_tasks=500,
    memory_interval=0.5,
    memory_window=0.5,
    history_stored=(2 * SATURATING_TASKS,),
    history_runs=1,
)


def main() -> None:
    parser = options(__doc__)
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections (default: all of {', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="measuring window of each daemon run (default 20)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a PostgreSQL server for the postgres section, e.g. "
        "postgresql://postgres@127.0.0.1:5432/test (a database is created on it and dropped)",
    )
    parser.add_argument(
        "--server",
        choices=("python", "node"),
        default="python",
        help="the API polled: tracker's simulator (python, the default) or a fast stand-in "
        "(node: benchmarks/video_server.mjs, needs Node.js)",
    )
    args = parse(parser)
    wanted = [name for name in SECTIONS if name in args.only.split(",")]
    if "postgres" in wanted and not args.postgres:
        print("postgres: skipped (it needs --postgres URL)")
        wanted.remove("postgres")
    scale = SMOKE if args.smoke else measuring(args.seconds)
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's notice about the Sora API
    print(f"tracker benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with (
        tempfile.TemporaryDirectory(prefix="tracker-bench-") as scratch,
        simulator(preload=PRELOADED, server=args.server) as url,
    ):
        directory = Path(scratch)
        raw = None  # raw aiohttp's rate, when the peers section measures it
        if "simulator" in wanted:
            print("simulator alone (its own process)")
            rate = tracker_client_rate(url, PRELOADED, scale.client_seconds, in_flight=128)
            report("simulator", "simulator, tracker's client with 128 in flight", f"{rate:,.0f}/s")
        if "peers" in wanted:
            print("peers, polling only (no database)")
            raw = peers(url, 4_000, scale.client_seconds)
        capacity = 2_000.0  # the target, until the throughput section measures it
        offer = f"{SATURATING_TASKS:,} tasks due every {SATURATING_INTERVAL:g} s"
        if "throughput" in wanted:
            print(f"throughput: one `tracker run`, SQLite, {offer}")
            database = directory / "throughput.db"
            result = saturate(url, database, directory, scale.window, warmup=scale.warmup)
            capacity = result["rate"]
            report("throughput", "polls/s sustained, every poll a snapshot", f"{capacity:,.0f}/s")
            of_raw("throughput", capacity, raw, url, scale.client_seconds)
            daemon_costs("throughput", result)
            report(
                "throughput",
                "requests answered / snapshots written",
                f"{result['answered']:,.0f} / {result['written']:,.0f}",
            )
            report("throughput", "peak RSS", f"{result['rss']:.0f} MB")
        if "providers" in wanted:
            print(f"providers: the same {offer}, of {PROVIDERS} providers")
            database = directory / "providers.db"
            result = saturate(
                url, database, directory, scale.window, warmup=scale.warmup, providers=PROVIDERS
            )
            report(
                "providers",
                f"polls/s sustained, {PROVIDERS} providers of {32 // PROVIDERS} in flight each",
                f"{result['rate']:,.0f}/s",
            )
            daemon_costs("providers", result)
            report(
                "providers",
                "requests answered / snapshots written",
                f"{result['answered']:,.0f} / {result['written']:,.0f}",
            )
        if "postgres" in wanted:
            print(f"throughput on PostgreSQL: the same {offer}")
            with postgres_database(args.postgres) as database_url:
                result = saturate(url, database_url, directory, scale.window, warmup=scale.warmup)
                report(
                    "postgres",
                    "polls/s sustained, every poll a snapshot",
                    f"{result['rate']:,.0f}/s",
                )
                of_raw("postgres", result["rate"], raw, url, scale.client_seconds)
                daemon_costs("postgres", result)
                report(
                    "postgres",
                    "requests answered / snapshots written",
                    f"{result['answered']:,.0f} / {result['written']:,.0f}",
                )
        if "lateness" in wanted:
            every = scale.lateness_interval
            # At least one task: a starved smoke run can measure no poll in its short window.
            tasks = max(1, min(PRELOADED, round(0.4 * capacity * every)))
            print(
                f"lateness: {tasks:,} tasks every {every:g} s ({tasks / every:,.0f}/s, "
                "40% of capacity)"
            )
            database = directory / "lateness.db"
            register(environment(url, database, every), directory, tasks)
            result = run_daemon(url, database, every, 2 * every, scale.lateness_window)
            late = lateness(database, every)
            gaps = (
                f"{percentile(late, 0.5):+.3f} / {percentile(late, 0.99):+.3f} / {max(late):+.3f} s"
                if late
                else "no task was polled twice"
            )
            report(
                "lateness",
                f"{tasks:,} tasks every {every:g} s: polls/s",
                f"{result['rate']:,.0f}/s",
            )
            report(
                "lateness",
                "gap between polls minus interval: p50 / p99 / max",
                gaps,
            )
        if "memory" in wanted:
            tasks, every = scale.memory_tasks, scale.memory_interval
            print(f"memory: {tasks:,} tasks every {every:g} s")
            database = directory / "memory.db"
            register(environment(url, database, every), directory, tasks)
            result = run_daemon(url, database, every, every / 5, scale.memory_window)
            report("memory", "polls/s", f"{result['rate']:,.0f}/s")
            report("memory", f"peak RSS with {tasks:,} watched tasks", f"{result['rss']:.0f} MB")
        if "history" in wanted:
            history(url, directory, scale, offer)
    finish(args.smoke, wanted)


def history(url: str, directory: Path, scale: Scale, offer: str) -> None:
    """The saturated daemon on databases holding ``scale.history_stored`` snapshots, and one
    task's history read from the last of them."""
    for stored in scale.history_stored:
        print(f"history: {offer}, {stored:,} snapshots already stored")
        database = directory / f"history-{stored}.db"
        register(environment(url, database, 1), directory, SATURATING_TASKS)
        began = time.perf_counter()
        fill_history(database, SATURATING_TASKS, stored)
        if stored:
            report(
                "history",
                f"{stored:,} snapshots generated in",
                f"{time.perf_counter() - began:.0f} s",
            )
        rates = [
            saturate(url, database, directory, scale.window, True, warmup=scale.warmup)["rate"]
            for _run in range(scale.history_runs)
        ]
        report(
            "history",
            f"polls/s on top of {stored:,} rows, run by run",
            " / ".join(f"{rate:,.0f}/s" for rate in rates),
        )
    query_ms, command_ms, count = history_latency_ms(database, "video_7")
    report("history", f"history of one task ({count:,} rows): query, median", f"{query_ms:.1f} ms")
    report(
        "history",
        "`tracker history` command, process start included",
        f"{command_ms:.0f} ms",
    )


if __name__ == "__main__":
    main()
