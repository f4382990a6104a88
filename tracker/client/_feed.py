"""Following ``GET /v1/events`` across connections, and waiting for a task through it: what to
send, what each line means, when to reconnect and how soon, when to read the task. No I/O: both
clients drive these the same way (docs/client.md, Events).

A connection is followed once its first line came: the server registers a stream before it
sends ``retry:``, so everything committed after that line is sent on it, and anything before
it is in the database for a read of the task to see."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from tracker.client._calls import Call, get_task, opened, read_task
from tracker.client._errors import ClientError, ConnectionFailed, ServerError
from tracker.client._models import Event, FinishedEvent, ResetEvent, TaskDetail, event_of
from tracker.client._sse import Comment, Decoder

logger = logging.getLogger("tracker.client")

# How soon to reconnect until the server says (its `retry:`).
DEFAULT_RETRY_MILLISECONDS = 3000
# The server sends a comment every 15 s: a connection silent for three of them is dead (a
# half-open TCP connection, a proxy that stopped forwarding) and is replaced.
SILENCE_SECONDS = 45.0
TOO_FAR_BEHIND = "too far behind"


@dataclass(frozen=True)
class Connected:
    """A connection's first line came: from here on the server follows it."""


@dataclass(frozen=True)
class Heartbeat:
    """A comment came (``: ping`` every 15 s while nothing happens)."""


Item = Connected | Heartbeat | Event
CONNECTED = Connected()
HEARTBEAT = Heartbeat()


def stream_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """The client's timeouts, but for reading a stream: a while without a heartbeat."""
    return httpx.Timeout(
        connect=timeout.connect, read=SILENCE_SECONDS, write=timeout.write, pool=timeout.pool
    )


def retryable(error: ClientError) -> bool:
    """Whether the same request may work a little later: no answer, or a server failing."""
    return isinstance(error, ConnectionFailed | ServerError)


class Subscription:
    """One follower of the event stream across its connections: its filters, the last event
    ID (kept as ``EventSource`` keeps it), the server's ``retry:``, and whether it has ever
    been followed (until then a failure is raised: a wrong URL or a server that is down is
    said at once, not retried for ever)."""

    def __init__(
        self,
        task_ids: str | Iterable[str] | None,
        label: str | None,
        last_event_id: str | None,
    ) -> None:
        ids = [task_ids] if isinstance(task_ids, str) else list(task_ids or ())
        self._params = tuple(("task_id", task_id) for task_id in ids)
        if label is not None:
            self._params += (("label", label),)
        self._decoder = Decoder(last_event_id)
        self._opened = False  # the current connection has sent a line
        self._followed = False  # some connection has
        self._behind = False  # the server let the current connection go for being slow
        self._failures = 0  # connections failed since one was last followed

    @property
    def last_event_id(self) -> str | None:
        return self._decoder.last_id

    def connecting(self) -> Call:
        """The call that opens the next connection, resuming after the last event ID."""
        self._decoder.restart()
        self._opened = self._behind = False
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self._decoder.last_id is not None:
            headers["Last-Event-ID"] = self._decoder.last_id
        return Call("GET", "/v1/events", self._params, headers=headers)

    def opened(self, call: Call, response: httpx.Response) -> None:
        """Raise what a refused stream stands for (its body read), or if it is no stream."""
        opened(call, response, "text/event-stream")

    def line(self, line: str) -> list[Item]:
        """What one line of the stream brings."""
        items: list[Item] = []
        if not self._opened:
            self._opened = self._followed = True
            self._failures = 0
            items.append(CONNECTED)
        message = self._decoder.line(line)
        if isinstance(message, Comment):
            self._behind = self._behind or message.text.startswith(TOO_FAR_BEHIND)
            items.append(HEARTBEAT)
        elif message is not None:
            event = event_of(message.event, message.data, message.last_id)
            if event is not None:
                items.append(event)
        return items

    def lost(self, failure: ClientError | None) -> float:
        """After a connection ended (``failure`` None) or failed: the seconds to wait before
        the next one; ``failure`` itself is raised if another connection would not help."""
        if failure is not None and not (self._followed and retryable(failure)):
            raise failure
        if self._behind:
            logger.info("the event stream fell too far behind; resuming at once")
            return 0.0
        retry_ms = self._decoder.retry_ms
        seconds = (DEFAULT_RETRY_MILLISECONDS if retry_ms is None else retry_ms) / 1000
        if failure is None:
            logger.info("the event stream ended; reconnecting in %.3g s", seconds)
            return seconds
        self._failures += 1
        # Said once an outage; each further attempt only for those who look closer.
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        logger.log(level, "the event stream failed (%s); reconnecting in %.3g s", failure, seconds)
        return seconds


class Waiting:
    """``wait``: follow the task's events, and read the task once its stream is followed
    (it may have finished before), after every reconnection or ``reset`` (events may have been
    missed), after its ``finished`` event, and at the next line after a read that failed."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.subscription = Subscription([task_id], None, None)
        self.call = get_task(task_id)
        self._unread = False

    def wants_read(self, item: Item) -> bool:
        if self._unread or isinstance(item, Connected | ResetEvent):
            return True
        return isinstance(item, FinishedEvent) and item.task_id == self.task_id

    def read(self, value: object) -> TaskDetail | None:
        """The task if it has finished."""
        self._unread = False
        task = read_task(value)
        return task if task.finished else None

    def failed(self, error: ClientError) -> None:
        """A read failed: tried again at the next line if it may work then, else raised."""
        if not retryable(error):
            raise error
        logger.warning("reading task %r failed (%s); reading it again shortly", self.task_id, error)
        self._unread = True
