"""Helpers for tests of the HTTP service: a daemon running in a thread of its own, and a
reader of Server-Sent Events over a real connection."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tracker import Tracker

TOKEN = "server-token-for-tests-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def daemon_running(tracker: Tracker) -> Iterator[None]:
    """``tracker run`` (with its settings, an HTTP port among them if set) in a thread, until the
    block ends; its ports are in ``tracker.daemon.ports`` once it listens."""
    loop_ready = threading.Event()
    holder: dict[str, Any] = {}
    failure: list[BaseException] = []

    async def main() -> None:
        holder["loop"] = asyncio.get_running_loop()
        holder["stop"] = asyncio.Event()
        loop_ready.set()
        await tracker.run_async(stop=holder["stop"])

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failure.append(exc)
            loop_ready.set()

    tracker.daemon  # made here, before two threads could each make one  # noqa: B018
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    loop_ready.wait(30)
    try:
        yield
    finally:
        if "loop" in holder:
            holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(30)
    if failure:
        raise failure[0]


@dataclass
class Event:
    id: str | None  # the last ID the stream gave, as a browser's EventSource keeps it
    event: str
    data: Any


def read_events(
    client: httpx.Client,
    url: str,
    *,
    until: int | Callable[[list[Event]], bool],
    headers: dict[str, str] | None = None,
    params: Any = None,
    opened: threading.Event | None = None,
    seconds: float = 60,
) -> list[Event]:
    """Read events from an event stream until ``until`` of them came, or ``until(events)`` is
    true (heartbeats and ``retry`` lines are not events), then hang up. ``opened`` is set once
    the server follows the stream (its ``retry`` line came); past ``seconds`` the test fails
    rather than waiting on heartbeats for ever."""
    done = until if callable(until) else lambda events: len(events) >= until
    deadline = time.monotonic() + seconds
    events: list[Event] = []
    with client.stream("GET", url, headers=headers, params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")

        def lines() -> Iterator[str]:
            for line in response.iter_lines():
                assert time.monotonic() < deadline, f"only these events came: {events}"
                if line.startswith("retry:") and opened is not None:
                    opened.set()
                yield line

        for event in events_of(lines()):
            events.append(event)
            if done(events):
                return events
    return events


def events_of(lines: Iterable[str]) -> Iterator[Event]:
    """The events of an event stream's lines, as a browser's EventSource dispatches them."""
    fields: dict[str, str] = {}
    last_id: str | None = None
    for line in lines:
        if line == "":
            last_id = fields.get("id", last_id)
            if "data" in fields:
                yield Event(last_id, fields.get("event", "message"), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def follow_in_background(
    client: httpx.Client,
    *,
    until: int,
    params: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[list[Event], threading.Thread]:
    """A thread reading ``/v1/events`` into the list it returns, started and followed by the
    server (so nothing written from here on can be missed) when this returns."""
    events: list[Event] = []
    opened = threading.Event()

    def follow() -> None:
        events.extend(
            read_events(
                client, "/v1/events", until=until, params=params, headers=headers, opened=opened
            )
        )

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert opened.wait(30), "the event stream did not open"
    return events, reader
