"""``GET /v1/events``: Server-Sent Events read from the database, so a stream sees the work of
every daemon on it, not one process's memory (docs/http-api.md, Events).

One ``Feed`` per server reads the snapshots committed since it last looked, in the feed's order
(tracker/core/feed.py), when a write says there are some (tracker/store/wakeups.py) and now and
then besides; it encodes them once and wakes each stream that follows them to send them in one
chunk: a thousand streams cost a thousand writes per read, not one per event each, and a stream
that follows everything sends the very bytes every other such stream does. Each event's ``id``
is its place in the feed, so a client that reconnects with ``Last-Event-ID`` is first given
what it missed, from the database, then the live chunks, without a gap or a repeat, whatever
order the writers committed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

from tracker.core.encoding import jsonable
from tracker.core.feed import FeedItem, FeedPosition
from tracker.errors import DatabaseError
from tracker.store import Database
from tracker.store.engine import reported_errors
from tracker.store.wakeups import Topic

logger = logging.getLogger(__name__)

# How often the feed looks without news: a write on PostgreSQL says so while the server's
# LISTEN connection is up; otherwise (SQLite written by another process, the connection lost)
# the feed looks a few times a second.
LOOK_SECONDS = 5.0
UNHEARD_LOOK_SECONDS = 0.25
# Committed snapshots waiting for an older transaction to end are looked at again this soon,
# then less often while it lasts.
HELD_BACK_SECONDS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
HEARTBEAT_SECONDS = 15.0
BATCH = 2000
RETRY_MILLISECONDS = 3000
RETRY = f"retry: {RETRY_MILLISECONDS}\n\n".encode()
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
# A stream that cannot read the database ends so (its client tries again after ``retry``),
# rather than failing after its answer began: on reconnecting, nothing was missed.
UNAVAILABLE = b": the database is unavailable: reconnect with Last-Event-ID\n\n"


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
    task. The last of them carries the item's place in the feed as its ``id``: a client cut off
    between the two resumes before both, and is sent the snapshot again rather than never told
    that its task finished."""
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
    position = f"id: {item.position}\n"
    text = f"{'' if item.finished else position}event: snapshot\ndata: {_json(snapshot)}\n\n"
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
        text += f"{position}event: finished\ndata: {_json(finished)}\n\n"
    return text.encode()


def reset(position: FeedPosition, asked: FeedPosition) -> bytes:
    """The event that says a stream starts at ``position``, not after ``asked``, which this
    database never gave out (it was recreated, or the ID came from another tracker)."""
    data = {
        "position": str(position),
        "detail": f"Last-Event-ID {asked} was never sent by this server's database: "
        "events from here on; read what you follow afresh",
    }
    return f"id: {position}\nevent: reset\ndata: {_json(data)}\n\n".encode()


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class _Piece:
    """A run of consecutive events read together, encoded once for every stream: ``text`` is
    all of them, ``ends[i]`` where ``items[i]``'s events end in it."""

    after: FeedPosition  # the place before its first
    last: FeedPosition
    items: tuple[FeedItem, ...]
    ends: tuple[int, ...]
    text: bytes

    def for_stream(self, stream: _Stream) -> bytes:
        if stream.interest.everything and self.after >= stream.after:
            return self.text  # the same object for every such stream: nothing copied
        view, start, wanted = memoryview(self.text), 0, []
        for item, end in zip(self.items, self.ends, strict=True):
            if item.position > stream.after and stream.interest.wants(item):
                wanted.append(view[start:end])
            start = end
        return b"".join(wanted)


def pieces(after: FeedPosition, items: list[FeedItem]) -> list[_Piece]:
    """``items`` in pieces of up to ``PIECE_BYTES`` (or one item, if it is larger)."""
    made: list[_Piece] = []
    run: list[FeedItem] = []
    texts: list[bytes] = []
    ends: list[int] = []
    for item in items:
        text = encode(item)
        if run and ends[-1] + len(text) > PIECE_BYTES:
            made.append(_piece(after, run, ends, texts))
            after, run, texts, ends = run[-1].position, [], [], []
        run.append(item)
        texts.append(text)
        ends.append((ends[-1] if ends else 0) + len(text))
    if run:
        made.append(_piece(after, run, ends, texts))
    return made


def _piece(after: FeedPosition, run: list[FeedItem], ends: list[int], texts: list[bytes]) -> _Piece:
    return _Piece(after, run[-1].position, tuple(run), tuple(ends), b"".join(texts))


@dataclass(eq=False)
class _Stream:
    interest: Interest
    after: FeedPosition  # everything up to here was sent to it, or held nothing for it
    wake: asyncio.Future[bool] | None = None  # set while it waits: True for news, False if none


class Feed:
    """Reads new snapshots while anyone follows them, and hands them to every stream.

    What was read stays in a log of pieces (up to ``BACKLOG_BYTES``) that every stream sends
    from at its own pace, so a waiting stream costs one wake-up per read, and a stream that
    falls behind sends what it owes in a few large chunks. One that falls off the log's start
    is ended (``BEHIND``); its client reconnects and catches up from the database: memory does
    not grow with slow clients."""

    def __init__(self, database: Database, stopping: asyncio.Event) -> None:
        self._store = database.feed
        self._wakeups = database.wakeups
        self._stopping = stopping
        self._streams: set[_Stream] = set()
        self._cursor = FeedPosition(0, 0)  # everything up to here is in the log
        self._log: deque[_Piece] = deque()
        self._logged = 0  # bytes in the log
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def followers(self) -> int:
        return len(self._streams)

    async def stream(
        self, interest: Interest, last_event_id: FeedPosition | None, interval: float = 0.0
    ) -> AsyncIterator[bytes]:
        """The body of one event stream: what was missed since ``last_event_id``, then the live
        events, heartbeats while nothing happens; it ends when the server stops, or with
        ``UNAVAILABLE`` when the database cannot be read. An ID this database never gave out is
        answered with a ``reset`` to the live events. With an ``interval``, a send is followed
        by that long a rest, and what came meanwhile goes out together after it: one chunk for
        a client that draws once an interval, not a few."""
        try:
            stream, up_to, resume = await self._join(interest, last_event_id)
        except DatabaseError:
            yield RETRY + UNAVAILABLE
            return
        try:
            yield RETRY
            if last_event_id is not None and resume is None:
                yield reset(up_to, last_event_id)
            elif resume is not None:
                async for chunk in self._missed(interest, resume, up_to):
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
        except DatabaseError:  # reading what it missed
            yield UNAVAILABLE
        finally:
            self._streams.discard(stream)

    async def _join(
        self, interest: Interest, last_event_id: FeedPosition | None
    ) -> tuple[_Stream, FeedPosition, FeedPosition | None]:
        """A new stream among those the reader wakes (starting the reader if none runs), the
        place the log it sends from begins, and where it resumes (None: from the live end)."""
        resume = last_event_id
        with reported_errors():
            if resume is not None and not await asyncio.to_thread(self._store.issued, resume):
                resume = None
            async with self._starting:
                if self._reader is None or self._reader.done():
                    self._cursor = await asyncio.to_thread(self._store.head)
                    self._log.clear()
                    self._logged = 0
                    self._reader = asyncio.create_task(self._read_while_followed())
                # From here on the log holds what comes after the cursor; what came before
                # it, after the client's last event, is read from the database.
                up_to = self._cursor
                stream = _Stream(interest, after=max(up_to, resume or up_to))
                self._streams.add(stream)
        return stream, up_to, resume

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

    async def _missed(
        self, interest: Interest, after: FeedPosition, up_to: FeedPosition
    ) -> AsyncIterator[bytes]:
        """What a reconnecting client missed, read from the database a page at a time, up to
        where the log it will send from next begins."""
        while after < up_to:
            with reported_errors():
                read = await asyncio.to_thread(
                    self._store.read,
                    after,
                    BATCH,
                    up_to=up_to,
                    task_ids=interest.task_ids,
                    label=interest.label,
                )
            if not read.items:
                return
            yield b"".join(encode(item) for item in read.items)
            after = read.items[-1].position

    async def _read_while_followed(self) -> None:
        with self._wakeups.signal(Topic.SNAPSHOTS) as news:

            def stopped(_: object) -> None:
                news.set()
                self._wake(list(self._streams))

            stopping = asyncio.ensure_future(self._stopping.wait())
            stopping.add_done_callback(stopped)
            held_back = 0  # reads in a row that found committed snapshots behind a running one
            try:
                while self._streams and not self._stopping.is_set():
                    news.clear()
                    try:
                        full, waiting = await self._read_once()
                    except Exception as exc:  # the database away: the streams wait
                        logger.warning("reading snapshots for the event streams failed: %s", exc)
                        full, waiting = False, False
                    if full:
                        continue
                    held_back = held_back + 1 if waiting else 0
                    await news.wait(self._next_look(held_back))
            finally:
                stopping.cancel()

    def _next_look(self, held_back: int) -> float:
        """How long until the next read unless a write says there is news: soon while committed
        snapshots wait behind an older transaction (whose end may be heard of by no one)."""
        if held_back:
            return HELD_BACK_SECONDS[min(held_back, len(HELD_BACK_SECONDS)) - 1]
        return LOOK_SECONDS if self._wakeups.listening else UNHEARD_LOOK_SECONDS

    async def _read_once(self) -> tuple[bool, bool]:
        """Read what was committed after the cursor; whether the read was full (more wait) and
        whether committed snapshots wait behind a transaction still running."""
        read = await asyncio.to_thread(self._store.read, self._cursor, BATCH)
        ready = read.items
        if not ready:
            return False, read.held_back
        new = pieces(self._cursor, ready)
        self._log.extend(new)
        self._logged += sum(len(piece.text) for piece in new)
        # Past the bounds, the oldest pieces go, but never this read's: a stream waiting now
        # is owed all of it.
        while self._log[0].after < self._cursor and self._logged > BACKLOG_BYTES:
            self._logged -= len(self._log.popleft().text)
        before, self._cursor = self._cursor, ready[-1].position
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
        return len(ready) >= BATCH, read.held_back

    @staticmethod
    def _wake(streams: list[_Stream]) -> None:
        for stream in streams:
            if stream.wake is not None:
                _ring(stream.wake, True)


def _ring(wake: asyncio.Future[bool], news: bool) -> None:
    if not wake.done():
        wake.set_result(news)


def interest_of(task_ids: Collection[str], label: str | None) -> Interest:
    return Interest(frozenset(task_ids), label)
