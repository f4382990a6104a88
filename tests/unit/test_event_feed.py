"""The event feed's rules, on an in-memory stand-in for the store's reads: what a stream is sent
while it rests out its interval, and how it moves past what it does not follow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy.exc import OperationalError

from tracker.core.feed import START, FeedItem, FeedPosition, FeedRead
from tracker.store import Database
from tracker.store.engine import create_engine
from tracker.store.wakeups import Wakeups
from tracker.web import events as feed
from tracker.web.events import Feed, Interest


class Snapshots:
    """The feed's reads over a list that the test appends to, with transactions that commit
    when the test says: a row of a running transaction is not seen, and the watermark is the
    oldest running one (as tracker.store.feed reads PostgreSQL)."""

    def __init__(self) -> None:
        self.items: list[FeedItem] = []
        self.running: set[int] = set()
        self.failing: set[str] = set()  # reads that fail as with the database away

    def _reach(self, read: str) -> None:
        if read in self.failing:
            raise OperationalError("SELECT", {}, Exception("the database system is starting up"))

    def add(self, task_id: str, *, pad: int = 0, xid: int = 0) -> None:
        self.items.append(
            FeedItem(
                xid=xid,
                id=len(self.items) + 1,
                task_id=task_id,
                polled_at=datetime(2026, 12, 2, tzinfo=UTC),
                http_status=200,
                status="in_progress" + " " * pad,
                progress=1,
                error=None,
                finished=False,
                label=None,
                metadata=None,
                finish_reason=None,
                finished_at=None,
            )
        )

    def _watermark(self) -> int:
        return min(self.running, default=2**62)

    def _visible(self) -> list[FeedItem]:
        return sorted(
            (item for item in self.items if item.xid not in self.running),
            key=lambda item: item.position,
        )

    def head(self) -> FeedPosition:
        self._reach("head")
        below = [i for i in self._visible() if i.xid < self._watermark()]
        return below[-1].position if below else START

    def issued(self, position: FeedPosition) -> bool:
        self._reach("issued")
        return position.id <= len(self.items) and position.xid < self._watermark()

    def read(
        self,
        after: FeedPosition,
        limit: int,
        *,
        up_to: FeedPosition | None = None,
        task_ids: Collection[str] = (),
        label: str | None = None,
    ) -> FeedRead:
        self._reach("read")
        wanted = [
            item
            for item in self._visible()
            if item.position > after
            and (up_to is None or item.position <= up_to)
            and (not task_ids or item.task_id in task_ids)
        ][:limit]
        below = [item for item in wanted if item.xid < self._watermark()]
        return FeedRead(below, held_back=len(below) < len(wanted))


def feed_on(snapshots: Snapshots) -> Feed:
    database = SimpleNamespace(feed=snapshots, wakeups=Wakeups(create_engine("sqlite://")))
    return Feed(cast(Database, database), asyncio.Event())


async def read_until(stream: AsyncIterator[bytes], wanted: int, seconds: float = 5) -> list[bytes]:
    """Chunks from the stream until ``wanted`` snapshot events came (or the stream ended)."""
    got: list[bytes] = []

    async def read() -> None:
        async for chunk in stream:
            got.append(chunk)
            if b"".join(got).count(b"event: snapshot") >= wanted or chunk == feed.BEHIND:
                return

    await asyncio.wait_for(read(), seconds)
    return got


def test_a_resting_stream_moves_past_what_it_does_not_follow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream that follows one task and rests out a long interval while far more than the log
    keeps is written for other tasks is not let go: it gets its own task's next event, once."""
    monkeypatch.setattr(feed, "UNHEARD_LOOK_SECONDS", 0.01)
    monkeypatch.setattr(feed, "BACKLOG_BYTES", 4096)
    snapshots = Snapshots()

    async def scenario() -> list[bytes]:
        events = feed_on(snapshots)
        stream = events.stream(Interest(frozenset({"mine"})), None, interval=0.5)
        assert await anext(stream) == f"retry: {feed.RETRY_MILLISECONDS}\n\n".encode()
        snapshots.add("mine")
        first = await read_until(stream, 1)
        for _ in range(50):  # some 30 KB for others while it rests: many times the log
            snapshots.add("other", pad=300)
            await asyncio.sleep(0.005)
        snapshots.add("mine")
        return first + await read_until(stream, 1)

    chunks = asyncio.run(scenario())
    text = b"".join(chunks)
    assert feed.BEHIND not in chunks
    assert text.count(b"event: snapshot") == 2 and b'"task_id":"other"' not in text


def test_what_comes_during_a_rest_is_sent_together_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first event goes out at once; the ones written during the rest that follows come in
    one chunk when it ends, in order."""
    monkeypatch.setattr(feed, "UNHEARD_LOOK_SECONDS", 0.01)
    snapshots = Snapshots()

    async def scenario() -> list[bytes]:
        events = feed_on(snapshots)
        stream = events.stream(Interest(), None, interval=0.3)
        await anext(stream)
        snapshots.add("a")
        first = await read_until(stream, 1)
        for task_id in ("b", "c", "d"):
            snapshots.add(task_id)
            await asyncio.sleep(0.03)
        return first + await read_until(stream, 3)

    chunks = asyncio.run(scenario())
    assert len(chunks) == 2
    assert [line for line in b"".join(chunks).split(b"\n") if line.startswith(b"id: ")] == [
        b"id: 0-1",
        b"id: 0-2",
        b"id: 0-3",
        b"id: 0-4",
    ]


def test_a_snapshot_committed_late_is_sent_in_its_place_and_nothing_overtakes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A transaction holding an older snapshot commits after a newer one was committed by
    another: the newer waits for it, then both go out, in the feed's order, each once."""
    monkeypatch.setattr(feed, "UNHEARD_LOOK_SECONDS", 0.01)
    snapshots = Snapshots()

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        events = feed_on(snapshots)
        stream = events.stream(Interest(), None)
        await anext(stream)
        snapshots.running.add(7)
        snapshots.add("late", xid=7)
        snapshots.add("early", xid=8)
        await asyncio.sleep(0.2)  # many reads while the late one runs
        assert not events._log  # nothing sent past the running transaction
        snapshots.running.discard(7)
        first = await read_until(stream, 2)
        snapshots.add("next", xid=9)
        return first, await read_until(stream, 1)

    first, then = asyncio.run(scenario())
    text = b"".join(first + then)
    assert [line for line in text.split(b"\n") if line.startswith(b"id: ")] == [
        b"id: 7-1",
        b"id: 8-2",
        b"id: 9-3",
    ]


def test_a_last_event_id_never_issued_is_answered_with_a_reset_then_live_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resuming after an ID past the newest (a database recreated) starts at the live end,
    said with a `reset` whose ID is that place, and then the events written after it."""
    monkeypatch.setattr(feed, "UNHEARD_LOOK_SECONDS", 0.01)
    snapshots = Snapshots()
    snapshots.add("old")

    async def scenario() -> list[bytes]:
        events = feed_on(snapshots)
        stream = events.stream(Interest(), FeedPosition(0, 999_999_999))
        got = [await anext(stream), await anext(stream)]
        snapshots.add("new")
        return got + await read_until(stream, 1)

    chunks = asyncio.run(scenario())
    assert chunks[1].startswith(b"id: 0-1\nevent: reset\ndata: ")
    assert b'"position":"0-1"' in chunks[1]
    assert b'"task_id":"new"' in chunks[2] and b'"task_id":"old"' not in b"".join(chunks)


def test_a_stream_that_cannot_read_the_database_ends_with_a_comment_to_reconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the database away, a stream (resuming or not, before or while reading what it
    missed) says so in a comment after `retry` and ends, rather than failing after its answer
    began; once the database is back, the same Last-Event-ID resumes with nothing missed."""
    monkeypatch.setattr(feed, "UNHEARD_LOOK_SECONDS", 0.01)
    snapshots = Snapshots()
    snapshots.add("seen")
    snapshots.add("missed")
    retry = f"retry: {feed.RETRY_MILLISECONDS}\n\n".encode()
    ended_so = [retry + feed.UNAVAILABLE]

    async def scenario() -> list[bytes]:
        events = feed_on(snapshots)
        snapshots.failing = {"issued", "head", "read"}
        assert [chunk async for chunk in events.stream(Interest(), FeedPosition(0, 1))] == ended_so
        assert [chunk async for chunk in events.stream(Interest(), None)] == ended_so
        snapshots.failing = {"read"}
        live = events.stream(Interest(), None)
        assert await anext(live) == retry  # the reader runs, from after "missed"
        resumed = [chunk async for chunk in events.stream(Interest(), FeedPosition(0, 1))]
        assert resumed == [retry, feed.UNAVAILABLE]
        snapshots.failing = set()
        again = events.stream(Interest(), FeedPosition(0, 1))
        got = [await anext(again), await anext(again)]
        await again.aclose()
        await live.aclose()
        return got

    chunks = asyncio.run(scenario())
    assert chunks[0] == retry
    assert b'"task_id":"missed"' in chunks[1] and b'"task_id":"seen"' not in chunks[1]


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("12-34", FeedPosition(12, 34)),
        (" 0-5 ", FeedPosition(0, 5)),
        ("77", FeedPosition(0, 77)),
        ("abc", None),
        ("-5", None),
        ("1-2-3", None),
        ("", None),
        ("99999999999999999999", None),
    ],
)
def test_event_ids_name_a_place_in_the_feed_or_none(
    text: str, position: FeedPosition | None
) -> None:
    assert FeedPosition.parse(text) == position
    if position is not None and "-" in text:
        assert str(position) == text.strip()
