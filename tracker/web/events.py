"""``GET /v1/events``: Server-Sent Events read from the database, so a stream sees the work of
every daemon on it, not one process's memory (docs/http-api.md, Events).

One ``Feed`` per server reads the snapshots written since it last looked, a few times a second,
and hands each stream the events it follows in one chunk per read: a thousand streams cost a
thousand writes per read, not one per event each. Each event's ``id`` is its snapshot's, so a
client that reconnects with ``Last-Event-ID`` is first given what it missed, from the database,
then the live chunks, without a gap or a repeat.

PostgreSQL hands out snapshot IDs before the transactions holding them commit, so a newer ID
can be seen before an older one: the feed moves past a missing ID only once it has stayed
missing for ``GAP_SECONDS`` (a transaction that rolled back).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field

from tracker.core.encoding import jsonable
from tracker.core.models import FeedItem
from tracker.store.reads import Reads

logger = logging.getLogger(__name__)

READ_SECONDS = 0.25
GAP_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0
BATCH = 2000
QUEUED_CHUNKS = 256  # a stream this far behind is ended; its client reconnects and catches up
RETRY_MILLISECONDS = 3000


@dataclass(frozen=True)
class Interest:
    """What a stream follows: some tasks, one label's, or everything."""

    task_ids: frozenset[str] = frozenset()
    label: str | None = None

    def wants(self, item: FeedItem) -> bool:
        if self.task_ids and item.task_id not in self.task_ids:
            return False
        return self.label is None or item.label == self.label

    @property
    def everything(self) -> bool:
        return not self.task_ids and self.label is None


def encode(item: FeedItem) -> bytes:
    """The item's events: a ``snapshot``, and a ``finished`` after the snapshot that ended its
    task, both with the snapshot's ID."""
    snapshot = {
        "id": item.id,
        "task_id": item.task_id,
        "label": item.label,
        "polled_at": jsonable(item.polled_at),
        "http_status": item.http_status,
        "status": item.status,
        "progress": item.progress,
        "error": item.error,
        "finished": item.finished,
    }
    text = f"id: {item.id}\nevent: snapshot\ndata: {_json(snapshot)}\n\n"
    if item.finished:
        finished = {
            "task_id": item.task_id,
            "label": item.label,
            "metadata": item.metadata,
            "status": item.status,
            "progress": item.progress,
            "finish_reason": item.finish_reason,
            "finished_at": jsonable(item.finished_at),
        }
        text += f"id: {item.id}\nevent: finished\ndata: {_json(finished)}\n\n"
    return text.encode()


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(eq=False)
class _Stream:
    interest: Interest
    after: int  # only snapshots after this one are handed to it
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUED_CHUNKS))


class Feed:
    """Reads new snapshots while anyone follows them, and hands them to every stream."""

    def __init__(self, reads: Reads, stopping: asyncio.Event) -> None:
        self._reads = reads
        self._stopping = stopping
        self._streams: set[_Stream] = set()
        self._cursor = 0  # every snapshot up to here was handed out
        self._gap_since: float | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def followers(self) -> int:
        return len(self._streams)

    async def stream(self, interest: Interest, last_event_id: int | None) -> AsyncIterator[bytes]:
        """The body of one event stream: what was missed since ``last_event_id``, then the live
        events, heartbeats while nothing happens, and a last ``retry`` when the server stops."""
        async with self._starting:
            if self._reader is None or self._reader.done():
                self._cursor = await asyncio.to_thread(self._reads.newest_snapshot_id)
                self._reader = asyncio.create_task(self._read_while_followed())
            # From here on the reader hands this stream what comes after the cursor; what came
            # before it, after the client's last event, is read from the database below.
            up_to = self._cursor
            stream = _Stream(interest, after=max(up_to, last_event_id or 0))
            self._streams.add(stream)
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            if last_event_id is not None:
                async for chunk in self._missed(interest, last_event_id, up_to):
                    yield chunk
            while not self._stopping.is_set():
                live = await self._next(stream.queue)
                if live is None:
                    return  # too far behind, or stopping: the client reconnects and catches up
                yield live
        finally:
            self._streams.discard(stream)

    async def _next(self, queue: asyncio.Queue[bytes | None]) -> bytes | None:
        getting = asyncio.ensure_future(queue.get())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {getting, stopping}, timeout=HEARTBEAT_SECONDS, return_when="FIRST_COMPLETED"
            )
        finally:
            for waiter in (getting, stopping):
                waiter.cancel()
        if getting in done:
            return getting.result()
        if stopping in done:
            return None
        return b": ping\n\n"

    async def _missed(self, interest: Interest, after: int, up_to: int) -> AsyncIterator[bytes]:
        """What a reconnecting client missed, read from the database a page at a time, up to
        where the live chunks it will get next begin."""
        while after < up_to:
            items = await asyncio.to_thread(
                self._reads.feed,
                after,
                BATCH,
                up_to_id=up_to,
                task_ids=interest.task_ids,
                label=interest.label,
            )
            if not items:
                return
            yield b"".join(encode(item) for item in items)
            after = items[-1].id

    async def _read_while_followed(self) -> None:
        while self._streams and not self._stopping.is_set():
            try:
                await self._read_once()
            except Exception as exc:  # the database away: the streams wait, the feed goes on
                logger.warning("reading new snapshots for the event streams failed: %s", exc)
            await asyncio.sleep(READ_SECONDS)

    async def _read_once(self) -> None:
        items = await asyncio.to_thread(self._reads.feed, self._cursor, BATCH)
        ready = self._contiguous(items, time.monotonic())
        if not ready:
            return
        self._cursor = ready[-1].id
        encoded = [(item, encode(item)) for item in ready]
        everything = b"".join(chunk for _, chunk in encoded)
        for stream in list(self._streams):
            if stream.interest.everything and stream.after < ready[0].id:
                chunk = everything
            else:
                chunk = b"".join(
                    c
                    for item, c in encoded
                    if item.id > stream.after and stream.interest.wants(item)
                )
            if chunk:
                self._hand(stream, chunk)

    def _contiguous(self, items: list[FeedItem], now: float) -> list[FeedItem]:
        """The items up to the first missing ID; past it once it has been missing too long."""
        expected = self._cursor + 1
        for index, item in enumerate(items):
            if item.id != expected:
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < GAP_SECONDS:
                    return items[:index]
                self._gap_since = None  # a transaction that never committed: move on
            expected = item.id + 1
        self._gap_since = None
        return items

    def _hand(self, stream: _Stream, chunk: bytes) -> None:
        try:
            stream.queue.put_nowait(chunk)
        except asyncio.QueueFull:
            # A client that does not keep up is let go rather than holding everyone back.
            self._streams.discard(stream)
            with_room = stream.queue
            while not with_room.empty():
                with_room.get_nowait()
            with_room.put_nowait(None)


def parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def interest_of(task_ids: Collection[str], label: str | None) -> Interest:
    return Interest(frozenset(task_ids), label)
