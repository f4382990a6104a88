"""The event feed's rules, on an in-memory stand-in for the store's reads: what a stream is sent
while it rests out its interval, and how it moves past what it does not follow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from typing import cast

import pytest

from tracker.core.models import FeedItem
from tracker.store.reads import Reads
from tracker.web import events as feed
from tracker.web.events import Feed, Interest


class Snapshots:
    """The two reads the feed makes, over a list that the test appends to."""

    def __init__(self) -> None:
        self.items: list[FeedItem] = []

    def add(self, task_id: str, *, pad: int = 0) -> None:
        self.items.append(
            FeedItem(
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

    def newest_snapshot_id(self) -> int:
        return len(self.items)

    def feed(
        self,
        after_id: int,
        limit: int,
        *,
        up_to_id: int | None = None,
        task_ids: Collection[str] = (),
        label: str | None = None,
    ) -> list[FeedItem]:
        return [
            item
            for item in self.items[after_id:]
            if (up_to_id is None or item.id <= up_to_id)
            and (not task_ids or item.task_id in task_ids)
        ][:limit]


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
    monkeypatch.setattr(feed, "READ_SECONDS", 0.01)
    monkeypatch.setattr(feed, "BACKLOG_BYTES", 4096)
    snapshots = Snapshots()

    async def scenario() -> list[bytes]:
        events = Feed(cast(Reads, snapshots), asyncio.Event())
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
    monkeypatch.setattr(feed, "READ_SECONDS", 0.01)
    snapshots = Snapshots()

    async def scenario() -> list[bytes]:
        events = Feed(cast(Reads, snapshots), asyncio.Event())
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
        b"id: 1",
        b"id: 2",
        b"id: 3",
        b"id: 4",
    ]
