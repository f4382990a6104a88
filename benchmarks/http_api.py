"""What the HTTP API (docs/http-api.md) costs: registering, paging through a million tasks, a
thousand event streams on one server, and what serving it costs a daemon.

    python benchmarks/http_api.py                       # every section, some ten minutes
    python benchmarks/http_api.py --only events --clients 1000 --seconds 20
    python benchmarks/http_api.py --smoke [--postgres URL]     # in seconds (the tests')

Every server is a real `tracker serve` or `tracker run --http-port` process on 127.0.0.1 with
a server token (TRACKER_SERVER_TOKENS); clients speak HTTP through httpx, but for the thousand
event streams, read straight off their sockets (see Follower). Sections:

- list:     an SQLite database of --tasks tasks (filled by million.py's `fill`: 19 in 20
            finished, one in ten labelled `batch`); `GET /v1/tasks?limit=100` followed page by
            page through its `next_cursor` to the last page (or --pages pages), unfiltered and
            with each filter: the time of every page as the client sees it;
- register: `POST /v1/tasks` with 10,000 new IDs (label and metadata), on an empty database and
            on the million of the list section; then the same 10,000 again (all existing);
- events:   one `tracker serve` with --clients `/v1/events` streams held open (each from one of
            a few loopback addresses, as the server caps connections per address), while a
            `tracker run` polls 1,100 simulated videos once a second each (some 1,000/s): for
            every snapshot, how long after its poll, and after it was written (readable as the
            feed reads, looked for every 5 ms), the first and the last stream had it,
            whether every stream had every snapshot, and the server's RSS (from /proc);
- daemon:   `tracker run` offered far more work than it can do (throughput.py's `saturate`),
            alone, serving the app (--http-port), and serving it to one event stream that
            follows everything, in turns: polls per second.

The wake section needs --postgres and is skipped without it. --smoke runs every section on a
few thousand tasks, 100 IDs a call, 16 streams and windows of a second or less, and checks that
each gave its figures, not what they are.

The figures are in docs/performance.md (The HTTP API).
"""

from __future__ import annotations

import asyncio
import bisect
import os
import random
import secrets
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
from million import fill
from results import finish, options, parse, report
from scratch_database import postgres_database
from throughput import (
    TRACKER,
    cpu_seconds,
    ended,
    environment,
    percentile,
    register,
    running,
    saturate,
    simulator,
    wait_until_up,
)

SECTIONS = ("list", "register", "events", "wake", "daemon")
# What --smoke sets of the options.
SMOKE = {
    "tasks": 2_000,
    "pages": 2,
    "clients": "16",
    "seconds": 1.0,
    "rounds": 1,
    "registrations": 2,
}


@dataclass(frozen=True)
class Sizes:
    """What the options do not set: a measurement's, or smoke mode's."""

    timed_pages: int = 20  # at least, of each filter in the list section
    register_ids: int = 10_000  # IDs in each POST /v1/tasks
    register_calls: int = 5
    event_tasks: int = 1_100  # polled once a second each while the streams are held
    warmup: float = 2.0  # from a daemon's first snapshot to what is measured
    saturated_warmup: float = 3.0  # the same in the daemon section (throughput's saturate)


SMOKE_SIZES = Sizes(
    timed_pages=3,
    register_ids=100,
    register_calls=1,
    event_tasks=50,
    warmup=0.3,
    saturated_warmup=0.3,
)
Place = tuple[int, int]  # an event's place in the feed: (transaction, snapshot id)
TOKEN = secrets.token_urlsafe(32)
AUTHORIZATION = {"Authorization": f"Bearer {TOKEN}"}
# The server lets one address hold 256 connections (tracker/web/server.py); the streams come
# from this many loopback addresses, as clients of a real service come from many.
SOURCE_ADDRESSES = [f"127.0.0.{n}" for n in range(2, 10)]
PAGE_FILTERS: list[tuple[str, dict[str, str]]] = [
    ("no filter", {}),
    ("finished=false", {"finished": "false"}),
    ("finished=true", {"finished": "true"}),
    ("label=batch", {"label": "batch"}),
    ("label=batch&finished=false", {"label": "batch", "finished": "false"}),
    ("status=in_progress", {"status": "in_progress"}),
    ("status=completed", {"status": "completed"}),
    ("status=failed (no such task)", {"status": "failed"}),
    ("label=nobody (no such task)", {"label": "nobody"}),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(database_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`tracker serve` on a port of its own, once it answers ``/healthz``."""
    port = free_port()
    env = {**os.environ, "TRACKER_DATABASE_URL": database_url}
    process = subprocess.Popen([*TRACKER, "-q", "serve", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def spread(times: list[float]) -> str:
    """p50 / p99 / max of ``times`` (seconds)."""
    return (
        f"{percentile(times, 0.5) * 1000:,.1f} / {percentile(times, 0.99) * 1000:,.1f} / "
        f"{max(times) * 1000:,.1f} ms"
    )


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# list


def walk(client: httpx.Client, query: dict[str, str], pages: int) -> tuple[list[float], int]:
    """Follow ``next_cursor`` from the first page: each page's time, and the tasks seen."""
    times: list[float] = []
    seen = 0
    cursor: str | None = None
    while pages <= 0 or len(times) < pages:
        params = {**query, "limit": "100", **({"cursor": cursor} if cursor else {})}
        began = time.perf_counter()
        response = client.get("/v1/tasks", params=params)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += len(page["tasks"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return times, seen


def list_section(database: Path, pages: int, sizes: Sizes) -> None:
    with (
        serving(f"sqlite:///{database}") as (url, _),
        httpx.Client(base_url=url, headers=AUTHORIZATION, timeout=60) as client,
    ):
        walk(client, {}, 1)  # the server's first request: its warm-up is not a page's cost
        for name, query in PAGE_FILTERS:
            times, seen = walk(client, query, pages)
            while len(times) < sizes.timed_pages:  # a filter of a page or two: timed again
                times += walk(client, query, pages)[0]
            report(
                "list",
                f"GET /v1/tasks?limit=100 {name}: {seen:,} tasks, {len(times):,} pages timed",
                f"first {ms(times[0])}; p50 / p99 / max {spread(times)}; last "
                f"{ms(times[-1])}; {sum(t > 0.05 for t in times):,} over 50 ms",
            )


# register


def openai_like_ids(count: int, seed: int) -> list[str]:
    """IDs shaped like OpenAI's: the time they were made in hex, then random hex."""
    rng = random.Random(seed)
    start = int(time.time())
    return [f"video_{start + i // 100:08x}{rng.getrandbits(96):024x}" for i in range(count)]


def register_section(database_url: str, where: str, sizes: Sizes, seed: int) -> None:
    with (
        serving(database_url) as (url, _),
        httpx.Client(base_url=url, headers=AUTHORIZATION, timeout=60) as client,
    ):
        client.get("/v1/stats")  # the server's warm-up
        times = []
        ids: list[str] = []
        count, rounds = sizes.register_ids, sizes.register_calls
        for round_ in range(rounds):
            ids = openai_like_ids(count, seed + round_)
            body = {"ids": ids, "label": "bench", "metadata": {"user": 42, "order": "A-17"}}
            began = time.perf_counter()
            response = client.post("/v1/tasks", json=body)
            times.append(time.perf_counter() - began)
            assert response.status_code == 201, response.text
            assert len(response.json()["added"]) == count
        report(
            "register",
            f"POST /v1/tasks, {count:,} new IDs, {where}: {rounds} calls, first; median; max",
            f"{ms(times[0])}; {ms(statistics.median(times))}; {ms(max(times))}",
        )
        began = time.perf_counter()
        response = client.post("/v1/tasks", json={"ids": ids, "label": "bench"})
        again = time.perf_counter() - began
        assert response.status_code == 201 and len(response.json()["existing"]) == count
        report("register", f"  the last {count:,} again (all existing), {where}", ms(again))


# events


class Follower(asyncio.Protocol):
    """One event stream, read straight off its socket: when each complete part of it arrived,
    and the highest snapshot id it held. httpx here cost more CPU than the server it measured
    (h11 parses the chunked body in Python), and on two shared cores that CPU is taken from the
    server; bytes are only counted here, which the server's chunking leaves whole."""

    def __init__(self, request: bytes) -> None:
        self.receipts: list[tuple[float, Place]] = []
        self.snapshots = 0
        self.connected = False
        self.error: str | None = None
        self._request = request
        self._carry = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.connected:
            if not data.startswith(b"HTTP/1.1 200 "):
                self.error = repr(data[:80])
                self.close()
                return
            self.connected = True
        data = self._carry + data
        end = data.rfind(b"\n\n") + 2  # events are whole only up to a blank line
        whole, self._carry = data[:end], data[end:]
        self.snapshots += whole.count(b"event: snapshot")
        at = whole.rfind(b"id: ")
        if at >= 0:
            xid, _, id_ = whole[at + 4 : whole.index(b"\n", at)].partition(b"-")
            self.receipts.append((now, (int(xid), int(id_))))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:  # not closed here: the server ended it
            self.error = self.error or f"closed by the server ({exc!r})"

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


def snapshots_since(database_url: str, after: int) -> list[tuple[Place, float]]:
    """Each snapshot after id ``after``: its place in the event feed and its poll time
    (seconds since the epoch), in the feed's order."""
    from sqlalchemy import text

    from tracker.store.engine import create_engine

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT xid, id, polled_at FROM snapshots WHERE id > :after"),
                {"after": after},
            ).all()
    finally:
        engine.dispose()
    return sorted(((int(xid), int(id_)), _epoch(polled)) for xid, id_, polled in rows)


def _epoch(value: datetime | str) -> float:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def newest_id(database_url: str) -> int:
    from sqlalchemy import text

    from tracker.store.engine import create_engine

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text("SELECT COALESCE(MAX(id), 0) FROM snapshots")) or 0)
    finally:
        engine.dispose()


def arrivals(
    followers: list[Follower], places: list[Place]
) -> tuple[dict[Place, float], dict[Place, float]]:
    """For each place in ``places`` (the feed's order), when the first and when the last stream
    had it. A receipt of place P holds every place up to P; streams are handed the same
    chunks, so their receipts cover few distinct ranges: each range is expanded once."""
    ranges: dict[tuple[int, int], list[float]] = {}
    for follower in followers:
        previous = 0
        for moment, newest in follower.receipts:
            upto = bisect.bisect_right(places, newest)
            if upto > previous:
                span = ranges.setdefault((previous, upto), [moment, moment])
                span[0] = min(span[0], moment)
                span[1] = max(span[1], moment)
                previous = upto
    first: dict[Place, float] = {}
    last: dict[Place, float] = {}
    for (low, high), (earliest, latest) in ranges.items():
        for place in places[low:high]:
            first[place] = min(first.get(place, earliest), earliest)
            last[place] = max(last.get(place, latest), latest)
    return first, last


async def hold_streams(url: str, count: int) -> list[Follower]:
    """``count`` streams, connected and answered."""
    port = int(url.rpartition(":")[2])
    request = (
        f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    followers = []
    for index in range(count):
        address = SOURCE_ADDRESSES[index % len(SOURCE_ADDRESSES)]
        _, follower = await loop.create_connection(
            partial(Follower, request), "127.0.0.1", port, local_addr=(address, 0)
        )
        followers.append(follower)
    deadline = time.monotonic() + 60
    while not all(f.connected or f.error for f in followers) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return followers


async def events_run(
    url: str,
    serve_pid: int,
    database: str,
    env: dict[str, str],
    clients: int,
    window: float,
    warmup: float,
) -> None:
    began = time.perf_counter()
    followers = await hold_streams(url, clients)
    connected = sum(f.connected for f in followers)
    report(
        "events",
        f"{clients:,} streams: connected, in",
        f"{connected:,}, {time.perf_counter() - began:.1f} s",
    )
    report("events", "  `tracker serve` RSS, the streams open, nothing polled", mb(serve_pid))
    sightings = Sightings(database)
    sightings.start()
    with running([*TRACKER, "-q", "run"], env=env) as daemon:
        while newest_id(database) == 0:  # starting
            if daemon.poll() is not None:
                raise ended(daemon)
            await asyncio.sleep(0.1)
        await asyncio.sleep(warmup)  # polling at its pace
        first_id, first_time = newest_id(database), time.monotonic()
        cpu_before, own_before = cpu_seconds(serve_pid), time.process_time()
        peak = 0.0
        while time.monotonic() - first_time < window:
            await asyncio.sleep(0.5)
            peak = max(peak, rss_mb(serve_pid))
        last_id, last_time = newest_id(database), time.monotonic()
        serve_cpu = (cpu_seconds(serve_pid) - cpu_before) / (last_time - first_time)
        own_cpu = (time.process_time() - own_before) / (last_time - first_time)
    every = snapshots_since(database, 0)
    final = every[-1][0]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        not f.error and (not f.receipts or f.receipts[-1][1] < final) for f in followers
    ):
        await asyncio.sleep(0.2)
    for follower in followers:
        follower.close()
    sightings.stop()

    rate = (last_id - first_id) / (last_time - first_time)
    report("events", "the daemon's polls/s meanwhile (every poll a snapshot)", f"{rate:,.0f}/s")
    whole = sum(f.snapshots == len(every) for f in followers)
    report(
        "events",
        f"streams given as many snapshot events as snapshots written ({len(every):,})",
        f"{whole:,} of {clients:,}",
    )
    errors = [f.error for f in followers if f.error]
    if errors:
        report("events", "streams that failed", f"{len(errors)} (the first: {errors[0]})")
    written = [(place, at) for place, at in every if place[1] > first_id]
    places = [place for place, _ in every]
    first, last = arrivals(followers, places)
    measured = [(place, at) for place, at in written if place[1] <= last_id and place in last]
    to_first = [first[place] - at for place, at in measured]
    to_last = [last[place] - at for place, at in measured]
    report(
        "events",
        f"{len(measured):,} snapshots: poll to the first stream, p50 / p99 / max",
        spread(to_first),
    )
    report("events", "  poll to the last of the streams, p50 / p99 / max", spread(to_last))
    readable = [place for place, _ in measured if place in sightings.seen]
    report(
        "events",
        f"{len(readable):,} of them: written (readable) to the first stream, p50 / p99 / max",
        spread([first[place] - sightings.seen[place] for place in readable]),
    )
    report(
        "events",
        "  written (readable) to the last of the streams, p50 / p99 / max",
        spread([last[place] - sightings.seen[place] for place in readable]),
    )
    report(
        "events",
        "  `tracker serve` RSS: most while polled; peak (VmHWM)",
        f"{peak:.0f} MB; {rss_mb(serve_pid, 'VmHWM'):.0f} MB",
    )
    report(
        "events",
        "  CPU: `tracker serve`; the streams' clients (this process)",
        f"{serve_cpu:.0%}; {own_cpu:.0%} of a core",
    )


class Sightings(threading.Thread):
    """When each snapshot became readable as the event feed reads (in the feed's order, below
    its watermark), looked for every 5 ms from a thread of its own: the moment it was written,
    as far as any reader can know."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        from tracker.store import Database
        from tracker.store.engine import create_engine

        self._database = Database(create_engine(database_url))
        self._halt = threading.Event()
        self.seen: dict[Place, float] = {}

    def run(self) -> None:
        cursor = self._database.feed.head()
        while not self._halt.is_set():
            read = self._database.feed.read(cursor, 10_000)
            now = time.time()
            for item in read.items:
                self.seen[(item.xid, item.id)] = now
            if read.items:
                cursor = read.items[-1].position
            self._halt.wait(0.005)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._database.close()


def mb(pid: int) -> str:
    return f"{rss_mb(pid):.0f} MB"


def events_section(
    directory: Path, clients: int, window: float, postgres: str | None, sizes: Sizes
) -> None:
    """One `tracker serve`, ``clients`` streams and a daemon polling, on a database of their
    own (on the PostgreSQL server ``postgres`` if given, else an SQLite file)."""
    from tracker.core.eventloop import run_event_loop

    # Each poll is due a second after the last was sent, so it answers a little later: 1,100
    # videos polled once a second each come to some 1,000 polls a second.
    tasks = sizes.event_tasks
    with (
        postgres_database(postgres)
        if postgres
        else nullcontext(f"sqlite:///{directory / f'events-{clients}.db'}") as database,
        simulator(preload=tasks) as api,
    ):
        env = environment(api, database, 1.0)
        register(env, directory, tasks)
        with serving(database) as (url, process):
            run_event_loop(
                events_run(url, process.pid, database, env, clients, window, sizes.warmup)
            )


# wake


def first_polled(engine: Any, task_id: str) -> float | None:
    from sqlalchemy import text

    with engine.connect() as connection:
        polled = connection.scalar(
            text("SELECT MIN(polled_at) FROM snapshots WHERE task_id = :task"), {"task": task_id}
        )
    return None if polled is None else _epoch(polled)


def wake_section(postgres: str, registrations: int, warmup: float) -> None:
    """An idle `tracker run` (one task at a 15 s interval) and a `tracker serve` in processes
    of their own on one PostgreSQL database: a task registered with `POST /v1/tasks`, at a
    random moment of the daemon's rest, is first polled how long after the request was sent
    (the snapshot's polled_at against this process's clock: the same machine's)."""
    from tracker.store.engine import create_engine

    with (
        postgres_database(postgres) as database,
        simulator(preload=registrations + 1) as api,
    ):
        env = environment(api, database, 15.0)
        subprocess.run([*TRACKER, "add", "video_0"], env=env, check=True, capture_output=True)
        engine = create_engine(database)
        try:
            with (
                running([*TRACKER, "-q", "run"], env=env) as daemon,
                serving(database) as (url, _),
                httpx.Client(base_url=url, headers=AUTHORIZATION, timeout=30) as client,
            ):
                while first_polled(engine, "video_0") is None:  # starting
                    if daemon.poll() is not None:
                        raise ended(daemon)
                    time.sleep(0.1)
                time.sleep(warmup)  # resting
                waits = []
                rng = random.Random(7)
                for index in range(1, registrations + 1):
                    time.sleep(rng.uniform(0.5, 2.0))
                    task_id = f"video_{index}"
                    sent = time.time()
                    response = client.post("/v1/tasks", json={"ids": [task_id]})
                    assert response.status_code == 201, response.text
                    deadline = time.monotonic() + 10
                    while (polled := first_polled(engine, task_id)) is None:
                        assert time.monotonic() < deadline, f"{task_id} was never polled"
                        time.sleep(0.005)
                    waits.append(polled - sent)
        finally:
            engine.dispose()
    report(
        "wake",
        f"registered over HTTP to first polled by an idle daemon elsewhere, {registrations} "
        "tasks: p50 / p99 / max",
        spread(waits),
    )


# daemon


@contextmanager
def one_stream(port: int) -> Iterator[list[int]]:
    """A client following every event from the daemon's app once it is up (in a thread): the
    number of snapshot events it had."""
    counted = [0]
    stop = threading.Event()

    def run() -> None:
        url = f"http://127.0.0.1:{port}"
        while not stop.is_set():
            try:
                with (
                    httpx.Client(base_url=url, headers=AUTHORIZATION, timeout=5) as client,
                    client.stream("GET", "/v1/events") as response,
                ):
                    for data in response.iter_raw():
                        counted[0] += data.count(b"event: snapshot")
                        if stop.is_set():
                            return
            except httpx.HTTPError:
                time.sleep(0.1)  # not up yet, or gone

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield counted
    finally:
        stop.set()
        thread.join(10)


def daemon_section(directory: Path, window: float, rounds: int, warmup: float) -> None:
    kinds = ("alone", "--http-port", "--http-port, 1 stream")
    runs: dict[str, list[dict[str, float]]] = {how: [] for how in kinds}
    with simulator(preload=10_000) as api:
        for round_ in range(rounds):
            for how in kinds:
                database = directory / f"daemon-{round_}-{kinds.index(how)}.db"
                port = free_port()
                options = [] if how == "alone" else ["--http-port", str(port)]
                with one_stream(port) if how.endswith("stream") else nullcontext([0]) as counted:
                    result = saturate(api, database, directory, window, False, options, warmup)
                runs[how].append(result)
                shown = f", the stream had {counted[0]:,} events" if counted[0] else ""
                print(
                    f"  round {round_ + 1}, {how}: {result['rate']:,.0f}/s, "
                    f"{result['cpu_ms_per_poll']:.3f} ms of CPU a poll{shown}",
                    flush=True,
                )
    alone = {key: statistics.mean(run[key] for run in runs["alone"]) for key in runs["alone"][0]}
    for how, results in runs.items():
        rate = statistics.mean(result["rate"] for result in results)
        cpu = statistics.mean(result["cpu_ms_per_poll"] for result in results)
        changes = (
            ""
            if how == "alone"
            else f" ({rate / alone['rate'] - 1:+.1%}; {cpu / alone['cpu_ms_per_poll'] - 1:+.1%})"
        )
        report(
            "daemon",
            f"`tracker run` {how}: polls/s, each run; mean; CPU a poll",
            " / ".join(f"{result['rate']:,.0f}" for result in results)
            + f"; {rate:,.0f}/s; {cpu:.3f} ms{changes}",
        )


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--tasks", type=int, default=1_000_000, help="for list and register")
    parser.add_argument("--pages", type=int, default=0, help="pages walked per filter (0: all)")
    parser.add_argument("--database", type=Path, help="keep (or reuse) the million's file here")
    parser.add_argument(
        "--clients", default="1000", help="event streams held (comma-separated: a run each)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="each measuring window")
    parser.add_argument("--rounds", type=int, default=2, help="daemon runs of each kind")
    parser.add_argument(
        "--postgres",
        help="a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/test): the events "
        "section runs on a database created on it, and the wake section needs it",
    )
    parser.add_argument("--registrations", type=int, default=40, help="tasks the wake section adds")
    args = parse(parser)
    sizes = Sizes()
    if args.smoke:
        vars(args).update(SMOKE)
        sizes = SMOKE_SIZES
    wanted = [name for name in SECTIONS if name in args.only.split(",")]
    if "wake" in wanted and not args.postgres:
        print("wake: skipped (it needs --postgres URL)")
        wanted.remove("wake")
    os.environ["TRACKER_SERVER_TOKENS"] = TOKEN
    print(f"tracker HTTP API benchmark: {os.cpu_count()} CPUs, load average {load()}")
    with tempfile.TemporaryDirectory(prefix="tracker-http-") as scratch:
        directory = Path(scratch)
        if {"list", "register"} & set(wanted):
            million = args.database or directory / "million.db"
            if not million.exists():
                print(f"filling {million} with {args.tasks:,} tasks …", flush=True)
                fill(million, args.tasks, 0)
        if "list" in wanted:
            print(f"list (load average {load()})")
            list_section(million, args.pages, sizes)
        if "register" in wanted:
            print(f"register (load average {load()})")
            empty = directory / "register.db"
            subprocess.run([*TRACKER, "--db", f"sqlite:///{empty}", "db", "upgrade"], check=True)
            register_section(f"sqlite:///{empty}", "empty database", sizes, seed=1)
            register_section(f"sqlite:///{million}", f"on {args.tasks:,} tasks", sizes, seed=100)
        if "events" in wanted:
            for clients in (int(count) for count in args.clients.split(",")):
                print(f"events, {clients:,} streams (load average {load()})")
                events_section(directory, clients, args.seconds, args.postgres, sizes)
        if "wake" in wanted:
            print(f"wake (load average {load()})")
            wake_section(args.postgres, args.registrations, sizes.warmup)
        if "daemon" in wanted:
            print(f"daemon (load average {load()})")
            daemon_section(directory, args.seconds, args.rounds, sizes.saturated_warmup)
    print(f"\n(load average at the end: {load()})")
    finish(args.smoke, wanted)


if __name__ == "__main__":
    main()
