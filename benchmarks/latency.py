"""One daemon against an API that takes its time: thousands of requests in flight.

    pip install -e '.[test]'
    python benchmarks/latency.py                     # http and https, 800 ms, 2,000 polls/s
    python benchmarks/latency.py --latency 0.3 --rate 1333 --concurrency 512 --only http
    python benchmarks/latency.py --smoke             # both schemes in seconds (the tests')

A small server in a process of its own, on 127.0.0.1, holds every answer for ``--latency``
seconds (a video still in progress), over plain HTTP or TLS (a certificate from a throwaway
authority made with trustme, which the daemon trusts through SSL_CERT_FILE). One `tracker run`
on SQLite watches ``--rate`` times ``--interval`` tasks, each due every ``--interval`` seconds,
with ``--concurrency`` requests in flight at most (and its HTTP service on, for the metrics),
started under a soft open-file limit of ``--soft-limit`` (1,024 by default, what systemd gives
a service) below a higher hard limit, which the daemon raises by itself. Per scheme it reports:

- polls/s sustained in a steady window, against the offer;
- how late polls come: from the daemon's own histogram (``tracker_poll_lateness_seconds``,
  when each request was sent against when its task was due), the bucket bound its 99th
  percentile is under and the share later than 1 s; and the gap between two polls of a task
  minus the interval, as throughput.py measures it (the jitter of ±10% of the interval is
  part of that one), p50 / p99;
- error snapshots, and the daemon's ERROR lines;
- peak RSS;
- the cost of setting up the connections: the time until every task was polled once (the
  first interval, when every connection is opened, with its TLS handshake for https) and the
  daemon's CPU seconds meanwhile, against its CPU seconds per interval in the steady window.

The tasks are made due evenly over the first interval, as in a daemon that has run for a while:
registered at once, they would all be due together, a burst that keeps them bunched for many
intervals when the offer is close to what ``--concurrency`` allows.

--smoke offers 40 polls/s of 50 ms answers for a second after a second and a half, on both
schemes, and checks that each gave every figure, not what they are.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from results import check_figures, options, parse
from throughput import (
    TRACKER,
    cpu_seconds,
    ended,
    environment,
    lateness,
    peak_rss_mb,
    percentile,
    register,
    rows,
    running,
    wait_until_up,
)

SCHEMES = ("http", "https")
SMOKE = {
    "latency": 0.05,
    "rate": 40,
    "interval": 1.0,
    "concurrency": 16,
    "warmup": 1.5,
    "seconds": 1,
}
_BODY = (
    b'{"id":"%s","object":"video","status":"in_progress","progress":50,'
    b'"model":"sora-2","seconds":"8","size":"720x1280","created_at":1764547200}'
)


# The server, in its own process (`latency.py --serve SECONDS [--tls CHAIN]`)


class _HeldAnswers(asyncio.Protocol):
    """Answers each GET of /v1/videos/ID after the latency, with ID in progress."""

    def __init__(self, latency: float) -> None:
        self._latency = latency
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        loop = asyncio.get_running_loop()
        while b"\r\n\r\n" in self._buffer:
            head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
            task_id = head.split(b" ", 2)[1].rsplit(b"/", 1)[-1]
            loop.call_later(self._latency, self._answer, task_id)

    def _answer(self, task_id: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        body = _BODY % task_id
        self._transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )


def serve(latency: float, chain: str | None) -> None:
    """Serve until SIGTERM; print the port first."""
    import ssl

    from tracker.core.eventloop import run_event_loop
    from tracker.daemon.descriptors import raise_open_file_limit

    raise_open_file_limit()
    tls = None
    if chain:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(chain)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _HeldAnswers(latency), "127.0.0.1", 0, ssl=tls, backlog=4096
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        server.close()

    run_event_loop(main())


def start_server(latency: float, chain: Path | None) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, __file__, "--serve", str(latency)]
    if chain is not None:
        command += ["--tls", str(chain)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, int(server.stdout.readline())


# Measuring the daemon


def first_polls(database: Path) -> int:
    connection = sqlite3.connect(database)
    try:
        return int(
            connection.execute("SELECT COUNT(*) FROM tasks WHERE poll_count > 0").fetchone()[0]
        )
    finally:
        connection.close()


def error_snapshots(database: Path) -> int:
    connection = sqlite3.connect(database)
    try:
        query = "SELECT COUNT(*) FROM snapshots WHERE error IS NOT NULL"
        return int(connection.execute(query).fetchone()[0])
    finally:
        connection.close()


def answer_times(database: Path, since: float) -> list[float]:
    """How long each answer took, as the daemon timed it, for the polls from ``since`` on."""
    connection = sqlite3.connect(database)
    try:
        query = (
            "SELECT latency_ms / 1000.0 FROM snapshots "
            "WHERE (julianday(polled_at) - 2440587.5) * 86400.0 >= ?"
        )
        return [row[0] for row in connection.execute(query, (since,))]
    finally:
        connection.close()


def lateness_buckets(port: int) -> dict[float, float]:
    """The daemon's own histogram of lateness (when each poll was sent against when its task
    was due, docs/operating.md): observations at most each bucket's bound."""
    prefix = 'tracker_poll_lateness_seconds_bucket{le="'
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        text = response.read().decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            bound, _, count = line[len(prefix) :].partition('"} ')
            buckets[float(bound)] = float(count)
    return buckets


def p99_bound(before: dict[float, float], after: dict[float, float]) -> tuple[float, float]:
    """Between two reads of the histogram: the least bucket bound the 99th percentile is
    under, and the share of polls later than 1 s."""
    counts = {bound: after[bound] - before.get(bound, 0.0) for bound in sorted(after)}
    total = counts[float("inf")] or 1.0
    p99 = next(bound for bound, count in counts.items() if count >= 0.99 * total)
    return p99, 1.0 - counts[1.0] / total


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spread(database: Path, interval: float) -> None:
    """Make the tasks due evenly over the next interval, as in a daemon that has been running
    for a while: tasks registered all at once are due together, a burst measured apart (the
    first round)."""
    connection = sqlite3.connect(database)
    try:
        ids = [row[0] for row in connection.execute("SELECT task_id FROM tasks ORDER BY task_id")]
        now = time.time()
        with connection:
            connection.executemany(
                "UPDATE tasks SET next_poll_at = ? WHERE task_id = ?",
                [
                    (
                        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(due))
                        + f".{int(due % 1 * 1e6):06d}",
                        task_id,
                    )
                    for index, task_id in enumerate(ids)
                    if (due := now + interval * index / len(ids))
                ],
            )
    finally:
        connection.close()


def soft_limit(soft: int) -> Callable[[], None]:
    def set_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return set_limit


def measure(scheme: str, args: argparse.Namespace, directory: Path) -> dict[str, float]:
    tasks = round(args.rate * args.interval)
    database = directory / f"{scheme}.db"
    chain = authority = None
    if scheme == "https":
        import trustme

        ca = trustme.CA()
        chain, authority = directory / "server.pem", directory / "ca.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(chain))
        ca.cert_pem.write_to_path(str(authority))
    server, port = start_server(args.latency, chain)
    try:
        env = environment(f"{scheme}://127.0.0.1:{port}", database, args.interval)
        if authority is not None:
            env["SSL_CERT_FILE"] = str(authority)
        register(env, directory, tasks)
        spread(database, args.interval)
        metrics_port = free_port()
        command = [
            *TRACKER,
            "run",
            f"--concurrency={args.concurrency}",
            f"--http-port={metrics_port}",
        ]
        began = time.monotonic()
        with (
            (directory / f"{scheme}.log").open("w") as log,
            running(command, env=env, stderr=log, preexec_fn=soft_limit(args.soft_limit)) as daemon,
        ):
            while first_polls(database) < tasks and time.monotonic() - began < args.warmup:
                if daemon.poll() is not None:
                    raise ended(daemon)
                time.sleep(0.1)
            ramp_seconds = time.monotonic() - began
            ramp_cpu = cpu_seconds(daemon.pid)
            time.sleep(max(0.0, args.warmup - ramp_seconds))
            wait_until_up(f"http://127.0.0.1:{metrics_port}")  # the window reads its /metrics
            start_rows, start_cpu, start = rows(database), cpu_seconds(daemon.pid), time.monotonic()
            start_stamp, start_buckets = time.time(), lateness_buckets(metrics_port)
            time.sleep(args.seconds)
            end_rows, end_cpu, end = rows(database), cpu_seconds(daemon.pid), time.monotonic()
            p99, over_1s = p99_bound(start_buckets, lateness_buckets(metrics_port))
            rss = peak_rss_mb(daemon.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    late = lateness(database, args.interval, since=start_stamp)
    answered = answer_times(database, start_stamp)
    errors_logged = sum(
        " ERROR " in line for line in (directory / f"{scheme}.log").read_text().splitlines()
    )
    return {
        "rate": (end_rows - start_rows) / (end - start),
        "p50": percentile(late, 0.50),
        "p99": percentile(late, 0.99),
        "lateness_p99": p99,
        "over_1s": over_1s,
        "answer_p50": percentile(answered, 0.50),
        "answer_p99": percentile(answered, 0.99),
        "errors": error_snapshots(database),
        "errors_logged": errors_logged,
        "rss": rss,
        "ramp": ramp_seconds if ramp_seconds < args.warmup else float("nan"),
        "ramp_cpu": ramp_cpu,
        "cpu": (end_cpu - start_cpu) / (end - start),
    }


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--latency", type=float, default=0.8, help="seconds each answer is held")
    parser.add_argument("--rate", type=float, default=2000, help="polls/s offered")
    parser.add_argument("--interval", type=float, default=10.0, help="each task's interval, s")
    parser.add_argument("--concurrency", type=int, default=2048)
    parser.add_argument("--soft-limit", type=int, default=1024, help="the daemon's at start")
    parser.add_argument("--warmup", type=float, default=25.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=30.0, help="the measuring window")
    parser.add_argument("--only", default=",".join(SCHEMES), help="http, https or both")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--tls", help=argparse.SUPPRESS)
    args = parse(parser)
    if args.serve is not None:
        serve(args.serve, args.tls)
        return
    if args.smoke:
        vars(args).update(SMOKE)
    tasks = round(args.rate * args.interval)
    print(
        f"tracker latency benchmark: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, "
        f"{tasks:,} tasks every {args.interval:g} s ({args.rate:,.0f} polls/s offered), answers "
        f"held {args.latency * 1000:.0f} ms (~{args.rate * args.latency:,.0f} in flight), "
        f"--concurrency {args.concurrency}, soft open-file limit {args.soft_limit:,} "
        f"(hard {resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,})",
        flush=True,
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="tracker-latency-") as scratch:
        for scheme in args.only.split(","):
            directory = Path(scratch) / scheme
            directory.mkdir()
            results[scheme] = measure(scheme, args, directory)
            print(f"  {scheme}: {results[scheme]}", flush=True)
    print(f"\n| measure | {' | '.join(results)} |\n|---|{'---|' * len(results)}")
    lines: list[tuple[str, Callable[[dict[str, float]], str]]] = [
        ("polls/s sustained (offered)", lambda r: f"{r['rate']:,.0f}/s ({args.rate:,.0f}/s)"),
        ("share of the offer", lambda r: f"{r['rate'] / args.rate:.1%}"),
        (
            "lateness (sent after due), p99 under / share over 1 s",
            lambda r: f"{r['lateness_p99']:g} s / {r['over_1s']:.2%}",
        ),
        (
            "gap between polls minus interval, p50 / p99",
            lambda r: f"{r['p50']:+.3f} / {r['p99']:+.3f} s",
        ),
        (
            "answer time seen by the daemon, p50 / p99",
            lambda r: f"{r['answer_p50']:.3f} / {r['answer_p99']:.3f} s",
        ),
        ("error snapshots / ERROR lines", lambda r: f"{r['errors']:,} / {r['errors_logged']:,}"),
        ("peak RSS", lambda r: f"{r['rss']:.0f} MB"),
        (
            "every task polled once (connections opened) after / daemon CPU meanwhile",
            lambda r: f"{r['ramp']:.1f} s / {r['ramp_cpu']:.1f} s",
        ),
        (
            "daemon CPU in the steady window, per interval",
            lambda r: f"{r['cpu'] * args.interval:.1f} s ({r['cpu']:.2f} s/s)",
        ),
    ]
    for what, cell in lines:
        print(f"| {what} | {' | '.join(cell(r) for r in results.values())} |")
    if args.smoke:
        figures = [
            (scheme, key, f"{value}") for scheme, r in results.items() for key, value in r.items()
        ]
        check_figures(results, figures)


if __name__ == "__main__":
    main()
