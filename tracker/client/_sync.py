"""``Client``: the API from ordinary (blocking) code."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future
from contextlib import closing, contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tracker.client._actions import Bulk, BulkAction, poll_task, read_acted, reopen_task
from tracker.client._calls import (
    DEFAULT_TIMEOUT_SECONDS,
    EVERY_TASK,
    PAGE_SIZE,
    Adding,
    Call,
    Connection,
    Filter,
    answer,
    get_task,
    read_removal,
    read_task,
    remove_task,
    snapshot_pages,
    task_pages,
)
from tracker.client._errors import ClientError, WaitTimeout, connection_failed
from tracker.client._export import Export, ExportFormat, ExportTable, row
from tracker.client._feed import (
    Connected,
    Heartbeat,
    Item,
    Subscription,
    Waiting,
    stream_timeout,
)
from tracker.client._models import (
    AddResult,
    BulkResult,
    Event,
    Metadata,
    Removal,
    Snapshot,
    Task,
    TaskDetail,
)

T = TypeVar("T")


class Client(Connection):
    """tracker's HTTP API at ``base_url`` (``http://127.0.0.1:8080``), authenticated with a
    server token. ``timeout`` bounds each request (seconds, or an ``httpx.Timeout``);
    ``transport`` replaces httpx's (a proxy's, a test's). Use it in a ``with`` block, or
    ``close()`` it. Safe to share between threads."""

    def __init__(
        self,
        base_url: str | httpx.URL,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token)
        self._http = httpx.Client(**self.options(base_url, token, timeout), transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def add(
        self,
        ids: str | Iterable[str],
        label: str | None = None,
        metadata: Metadata | None = None,
        provider: str | None = None,
    ) -> AddResult:
        """Registers the tasks (each call of the server takes up to 10,000; more are sent in
        several), due at once; those registered already are left as they are."""
        adding = Adding(ids, label, metadata, provider)
        for call in adding.calls:
            adding.take(self._send(call))
        return adding.result

    def task(self, task_id: str) -> TaskDetail:
        """The task as it is now, with its downloads and notifications."""
        return read_task(self._send(get_task(task_id)))

    def tasks(
        self,
        *,
        status: str | None = None,
        finished: bool | None = None,
        label: str | None = None,
        provider: str | None = None,
        prefix: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Task]:
        """Every task that matches, newest first, read a page at a time as it is iterated."""
        pages = task_pages(
            status=status,
            finished=finished,
            label=label,
            provider=provider,
            prefix=prefix,
            page_size=page_size,
        )
        while not pages.done:
            yield from pages.take(self._send(pages.call()))

    def snapshots(self, task_id: str, *, page_size: int = PAGE_SIZE) -> Iterator[Snapshot]:
        """The task's whole history, oldest first, read a page at a time as it is iterated."""
        pages = snapshot_pages(task_id, page_size)
        while not pages.done:
            yield from pages.take(self._send(pages.call()))

    def remove(self, task_id: str) -> Removal:
        """Stops watching the task (it finishes as ``removed``); its history is kept."""
        return read_removal(self._send(remove_task(task_id)))

    def poll_now(self, task_id: str) -> Task:
        """Makes the unfinished task due at once; ``Conflict`` if it has finished."""
        return read_acted(self._send(poll_task(task_id)))

    def reopen(self, task_id: str) -> Task:
        """Watches the task that ended (failed, not found, timed out, removed) again;
        ``Conflict`` if it completed or has not ended."""
        return read_acted(self._send(reopen_task(task_id)))

    def bulk_remove(self, which: str | Iterable[str] | Filter) -> BulkResult:
        """``remove`` of the tasks of these IDs, or of every task the ``Filter`` matches."""
        return self._bulk("remove", which)

    def bulk_poll(self, which: str | Iterable[str] | Filter) -> BulkResult:
        """``poll_now`` of the tasks of these IDs, or of every task the ``Filter`` matches."""
        return self._bulk("poll", which)

    def bulk_reopen(self, which: str | Iterable[str] | Filter) -> BulkResult:
        """``reopen`` of the tasks of these IDs, or of every task the ``Filter`` matches."""
        return self._bulk("reopen", which)

    def export_tasks(
        self, which: Filter = EVERY_TASK, *, since: str | datetime | None = None
    ) -> Iterator[Task]:
        """The tasks ``which`` selects (registered or polled since ``since``), oldest first,
        streamed: read as they are iterated, in flat memory."""
        return self._rows(Task, Export("tasks", "jsonl", which, since))

    def export_snapshots(
        self, which: Filter = EVERY_TASK, *, since: str | datetime | None = None
    ) -> Iterator[Snapshot]:
        """The snapshots of the tasks ``which`` selects (polled since ``since``), in the order
        they were written, streamed."""
        return self._rows(Snapshot, Export("snapshots", "jsonl", which, since))

    def export_bytes(
        self,
        table: ExportTable = "snapshots",
        format: ExportFormat = "csv",
        which: Filter = EVERY_TASK,
        *,
        since: str | datetime | None = None,
    ) -> Iterator[bytes]:
        """The export's body as it comes, what ``tracker export`` writes byte for byte: to
        write to a file as it is iterated."""
        export = Export(table, format, which, since)
        with self._stream(export.call, export.opened) as response:
            yield from response.iter_bytes()

    def events(
        self,
        task_ids: str | Iterable[str] | None = None,
        label: str | None = None,
        last_event_id: str | None = None,
    ) -> Iterator[Event]:
        """The events of the tasks named (or of one label, or of all), as they come, for as
        long as it is iterated: reconnecting by itself, after ``last_event_id`` if given."""
        with closing(self._follow(Subscription(task_ids, label, last_event_id))) as items:
            for item in items:
                if not isinstance(item, Connected | Heartbeat):
                    yield item

    def wait(self, task_id: str, timeout: float | None = None) -> TaskDetail:
        """The task once it has finished (at once if it has); ``WaitTimeout`` after
        ``timeout`` seconds."""
        if timeout is None:
            return self._wait(task_id, threading.Event())
        # A blocking read cannot be cut short: the waiting is done in a thread, which ends at
        # its stream's next line once told to stop.
        stop = threading.Event()
        result: Future[TaskDetail] = Future()

        def run() -> None:
            try:
                result.set_result(self._wait(task_id, stop))
            except BaseException as exc:
                result.set_exception(exc)

        threading.Thread(target=run, name=f"tracker-wait-{task_id}", daemon=True).start()
        try:
            return result.result(timeout)
        except TimeoutError:
            raise WaitTimeout(task_id, timeout) from None
        finally:
            stop.set()

    def _wait(self, task_id: str, stop: threading.Event) -> TaskDetail:
        """The task once finished; ``_Stopped`` if told to stop first."""
        waiting = Waiting(task_id)
        with closing(self._follow(waiting.subscription, stop)) as items:
            for item in items:
                if waiting.wants_read(item):
                    try:
                        task = waiting.read(self._send(waiting.call))
                    except ClientError as exc:
                        waiting.failed(exc)
                        continue
                    if task is not None:
                        return task
        raise _Stopped

    def _follow(
        self, subscription: Subscription, stop: threading.Event | None = None
    ) -> Generator[Item]:
        """The items of the stream, across connections, until ``stop`` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            call = subscription.connecting()
            failure: ClientError | None = None
            try:
                timeout = stream_timeout(self._http.timeout)
                with self._stream(call, subscription.opened, timeout) as response:
                    for line in response.iter_lines():
                        yield from subscription.line(line)
                        if stop.is_set():
                            return
            except ClientError as exc:
                failure = exc
            _rest(stop, subscription.lost(failure))

    def _bulk(self, action: BulkAction, which: str | Iterable[str] | Filter) -> BulkResult:
        bulk = Bulk(action, which)
        for call in bulk.calls:
            bulk.take(self._send(call))
        return bulk.result

    def _rows(self, cls: type[T], export: Export) -> Iterator[T]:
        call = export.call
        with self._stream(call, export.opened) as response:
            for line in response.iter_lines():
                record = row(cls, call, line)
                if record is not None:
                    yield record

    @contextmanager
    def _stream(
        self,
        call: Call,
        opened: Callable[[Call, httpx.Response], None],
        timeout: httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """The answer's head, its body to be read; what ``opened`` raises if it is not the
        stream asked for; ``ConnectionFailed`` if the connection fails, even mid-body."""
        request = call.request(self._http, timeout)
        try:
            response = self._http.send(request, stream=True)
            try:
                if not response.is_success:
                    response.read()
                opened(call, response)
                yield response
            finally:
                response.close()
        except httpx.RequestError as exc:
            raise connection_failed(str(call), self._origin, exc) from exc

    def _send(self, call: Call) -> Any:
        try:
            response = self._http.send(call.request(self._http))
        except httpx.RequestError as exc:
            raise connection_failed(str(call), self._origin, exc) from exc
        return answer(call, response)


class _Stopped(Exception):
    """A wait given up by its caller (its timeout passed): nobody reads what it ends with."""


def _rest(stop: threading.Event, seconds: float) -> None:
    """Before the next connection: ``seconds``, or until told to stop."""
    stop.wait(seconds)
