"""``GET /v1/events``: Server-Sent Events read from the database, so a stream sees the work of
every daemon on it, not one process's memory (docs/http-api.md, Events).

One ``Feed`` per server reads the snapshots written since it last looked, a few times a second,
encodes them once, and wakes each stream that follows them to send them in one chunk: a
thousand streams cost a thousand writes per read, not one per event each, and a stream that
follows everything sends the very bytes every other such stream does. Each event's ``id`` is
its snapshot's, so a client that reconnects with ``Last-Event-ID`` is first given what it
missed, from the database, then the live chunks, without a gap or a repeat.

PostgreSQL hands out snapshot IDs before the transactions holding them commit, so a newer ID
can be seen before an older one: the feed moves past a missing ID only once it has stayed
missing for ``GAP_SECONDS`` (a transaction that rolled back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

from tracker.core.encoding import jsonable
from tracker.core.models import FeedItem
from tracker.store.reads import Reads

logger = logging.getLogger(__name__)

READ_SECONDS = 0.25
GAP_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0
BATCH = 2000
RETRY_MILLISECONDS = 3000
# A stream asked to send at most once every so many seconds holds what it owes meanwhile in
# the log, which keeps some 16 s of a busy feed: past this it would fall off and start over.
MAX_INTERVAL_SECONDS = 10.0
# A read is kept in pieces of about this size, and a stream that owes several sends them in
# chunks of about this size: what one slow client holds in the server's buffers is about one
# chunk besides the transport's own 64 KiB, rather than all it owes.
PIECE_BYTES = CHUNK_BYTES = 128 * 1024
# What is kept for streams to send, besides the newest read: some 16 s of 1,000 snapshots a
# second. A stream further behind is ended with BEHIND; its client reconnects with
# Last-Event-ID and catches up from the database.
BACKLOG_BYTES = 4 * 1024 * 1024
BEHIND = b": too far behind: reconnect with Last-Event-ID\n\n"


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


@dataclass(frozen=True)
class _Piece:
    """A run of consecutive events read together, encoded once for every stream: ``text`` is
    all of them, ``ends[i]`` where ``items[i]``'s events end in it."""

    after: int  # the snapshot before its first
    last: int
    items: tuple[FeedItem, ...]
    ends: tuple[int, ...]
    text: bytes

    def for_stream(self, stream: _Stream) -> bytes:
        if stream.interest.everything and self.after >= stream.after:
            return self.text  # the same object for every such stream: nothing copied
        view, start, wanted = memoryview(self.text), 0, []
        for item, end in zip(self.items, self.ends, strict=True):
            if item.id > stream.after and stream.interest.wants(item):
                wanted.append(view[start:end])
            start = end
        return b"".join(wanted)


def pieces(after: int, items: list[FeedItem]) -> list[_Piece]:
    """``items`` in pieces of up to ``PIECE_BYTES`` (or one item, if it is larger)."""
    made: list[_Piece] = []
    run: list[FeedItem] = []
    texts: list[bytes] = []
    ends: list[int] = []
    for item in items:
        text = encode(item)
        if run and ends[-1] + len(text) > PIECE_BYTES:
            made.append(_Piece(after, run[-1].id, tuple(run), tuple(ends), b"".join(texts)))
            after, run, texts, ends = run[-1].id, [], [], []
        run.append(item)
        texts.append(text)
        ends.append((ends[-1] if ends else 0) + len(text))
    if run:
        made.append(_Piece(after, run[-1].id, tuple(run), tuple(ends), b"".join(texts)))
    return made


@dataclass(eq=False)
class _Stream:
    interest: Interest
    after: int  # everything up to this snapshot was sent to it, or held nothing for it
    wake: asyncio.Future[bool] | None = None  # set while it waits: True for news, False if none


class Feed:
    """Reads new snapshots while anyone follows them, and hands them to every stream.

    What was read stays in a log of pieces (up to ``BACKLOG_BYTES``) that every stream sends
    from at its own pace, so a waiting stream costs one wake-up per read, and a stream that
    falls behind sends what it owes in a few large chunks. One that falls off the log's start
    is ended (``BEHIND``); its client reconnects and catches up from the database: memory does
    not grow with slow clients."""

    def __init__(self, reads: Reads, stopping: asyncio.Event) -> None:
        self._reads = reads
        self._stopping = stopping
        self._streams: set[_Stream] = set()
        self._cursor = 0  # every snapshot up to here is in the log
        self._log: deque[_Piece] = deque()
        self._logged = 0  # bytes in the log
        self._gap_since: float | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def followers(self) -> int:
        return len(self._streams)

    async def stream(
        self, interest: Interest, last_event_id: int | None, interval: float = 0.0
    ) -> AsyncIterator[bytes]:
        """The body of one event stream: what was missed since ``last_event_id``, then the live
        events, heartbeats while nothing happens; it ends when the server stops. With an
        ``interval``, a send is followed by that long a rest, and what came meanwhile goes out
        together after it: one chunk for a client that draws once an interval, not a few."""
        async with self._starting:
            if self._reader is None or self._reader.done():
                self._cursor = await asyncio.to_thread(self._reads.newest_snapshot_id)
                self._log.clear()
                self._logged = 0
                self._reader = asyncio.create_task(self._read_while_followed())
            # From here on the log holds what comes after the cursor; what came before it,
            # after the client's last event, is read from the database below.
            up_to = self._cursor
            stream = _Stream(interest, after=max(up_to, last_event_id or 0))
            self._streams.add(stream)
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            if last_event_id is not None:
                async for chunk in self._missed(interest, last_event_id, up_to):
                    yield chunk
            rest = False  # whether it sent since its last rest
            while not self._stopping.is_set():
                owed = self._owed(stream)
                if owed is None:
                    yield BEHIND  # the client reconnects with its Last-Event-ID and catches up
                    return
                if owed:
                    yield owed
                    rest = interval > 0
                elif rest:
                    rest = False
                    await self._rest(interval)
                elif not await self._wait(stream):
                    yield b": ping\n\n"
        finally:
            self._streams.discard(stream)

    def _owed(self, stream: _Stream) -> bytes | None:
        """What the log holds for ``stream`` (up to about ``CHUNK_BYTES``), or None if part of
        it has left the log."""
        if self._log and stream.after < self._log[0].after:
            return None
        new: list[_Piece] = []
        for piece in reversed(self._log):  # most streams owe the newest piece or nothing
            if piece.last <= stream.after:
                break
            new.append(piece)
        chunks: list[bytes] = []
        size = 0  # pieces with nothing for a filtered stream are passed over, however many
        while new and (not size or size + len(new[-1].text) <= CHUNK_BYTES):
            piece = new.pop()
            chunks.append(piece.for_stream(stream))
            size += len(chunks[-1])
            stream.after = piece.last
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # b"": it owes nothing

    async def _wait(self, stream: _Stream) -> bool:
        """Until the feed has news or stops (True), or ``HEARTBEAT_SECONDS`` (False)."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[bool] = loop.create_future()
        stream.wake = wake
        quiet = loop.call_later(HEARTBEAT_SECONDS, _ring, wake, False)
        try:
            return await wake
        finally:
            quiet.cancel()
            stream.wake = None

    async def _rest(self, seconds: float) -> None:
        """``seconds``, or until the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _missed(self, interest: Interest, after: int, up_to: int) -> AsyncIterator[bytes]:
        """What a reconnecting client missed, read from the database a page at a time, up to
        where the log it will send from next begins."""
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
        stopped = asyncio.ensure_future(self._stopping.wait())
        stopped.add_done_callback(lambda _: self._wake(list(self._streams)))
        try:
            while self._streams and not self._stopping.is_set():
                try:
                    await self._read_once()
                except Exception as exc:  # the database away: the streams wait, the feed goes on
                    logger.warning("reading new snapshots for the event streams failed: %s", exc)
                await self._rest(READ_SECONDS)
        finally:
            stopped.cancel()

    async def _read_once(self) -> None:
        items = await asyncio.to_thread(self._reads.feed, self._cursor, BATCH)
        ready = self._contiguous(items, time.monotonic())
        if not ready:
            return
        new = pieces(self._cursor, ready)
        self._log.extend(new)
        self._logged += sum(len(piece.text) for piece in new)
        # Past the bounds, the oldest pieces go, but never this read's: a stream waiting now
        # is owed all of it.
        while self._log[0].after < self._cursor and self._logged > BACKLOG_BYTES:
            self._logged -= len(self._log.popleft().text)
        before, self._cursor = self._cursor, ready[-1].id
        # A filtered stream that owes nothing before this read (waiting, resting out its
        # interval, or sending its last chunk) and wants none of it moves past it here, rather
        # than being woken for nothing or falling off the log while it rests.
        unwanted = [
            stream
            for stream in self._streams
            if stream.after == before
            and not stream.interest.everything
            and not any(stream.interest.wants(item) for item in ready)
        ]
        for stream in unwanted:
            stream.after = self._cursor
        self._wake([s for s in self._streams if s.wake is not None and s.after < self._cursor])

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

    @staticmethod
    def _wake(streams: list[_Stream]) -> None:
        for stream in streams:
            if stream.wake is not None:
                _ring(stream.wake, True)


def _ring(wake: asyncio.Future[bool], news: bool) -> None:
    if not wake.done():
        wake.set_result(news)


def parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def interest_of(task_ids: Collection[str], label: str | None) -> Interest:
    return Interest(frozenset(task_ids), label)
