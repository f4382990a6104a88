"""``AsyncClient``: the API from asyncio code, as ``Client`` gives it to blocking code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import aclosing, asynccontextmanager
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


class AsyncClient(Connection):
    """``Client`` for asyncio: the same arguments and methods, awaited (``tasks``,
    ``snapshots``, ``events`` and the exports are iterated with ``async for``). Use it in an
    ``async with`` block, or ``await aclose()``."""

    def __init__(
        self,
        base_url: str | httpx.URL,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token)
        options = self.options(base_url, token, timeout)
        self._http = httpx.AsyncClient(**options, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def add(
        self,
        ids: str | Iterable[str],
        label: str | None = None,
        metadata: Metadata | None = None,
        provider: str | None = None,
    ) -> AddResult:
        """As ``Client.add``."""
        adding = Adding(ids, label, metadata, provider)
        for call in adding.calls:
            adding.take(await self._send(call))
        return adding.result

    async def task(self, task_id: str) -> TaskDetail:
        """As ``Client.task``."""
        return read_task(await self._send(get_task(task_id)))

    async def tasks(
        self,
        *,
        status: str | None = None,
        finished: bool | None = None,
        label: str | None = None,
        provider: str | None = None,
        prefix: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[Task]:
        """As ``Client.tasks``."""
        pages = task_pages(
            status=status,
            finished=finished,
            label=label,
            provider=provider,
            prefix=prefix,
            page_size=page_size,
        )
        while not pages.done:
            for task in pages.take(await self._send(pages.call())):
                yield task

    async def snapshots(
        self, task_id: str, *, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[Snapshot]:
        """As ``Client.snapshots``."""
        pages = snapshot_pages(task_id, page_size)
        while not pages.done:
            for snapshot in pages.take(await self._send(pages.call())):
                yield snapshot

    async def remove(self, task_id: str) -> Removal:
        """As ``Client.remove``."""
        return read_removal(await self._send(remove_task(task_id)))

    async def poll_now(self, task_id: str) -> Task:
        """As ``Client.poll_now``."""
        return read_acted(await self._send(poll_task(task_id)))

    async def reopen(self, task_id: str) -> Task:
        """As ``Client.reopen``."""
        return read_acted(await self._send(reopen_task(task_id)))

    async def bulk_remove(self, which: str | Iterable[str] | Filter) -> BulkResult:
        """As ``Client.bulk_remove``."""
        return await self._bulk("remove", which)

    async def bulk_poll(self, which: str | Iterable[str] | Filter) -> BulkResult:
        """As ``Client.bulk_poll``."""
        return await self._bulk("poll", which)

    async def bulk_reopen(self, which: str | Iterable[str] | Filter) -> BulkResult:
        """As ``Client.bulk_reopen``."""
        return await self._bulk("reopen", which)

    def export_tasks(
        self, which: Filter = EVERY_TASK, *, since: str | datetime | None = None
    ) -> AsyncIterator[Task]:
        """As ``Client.export_tasks``."""
        return self._rows(Task, Export("tasks", "jsonl", which, since))

    def export_snapshots(
        self, which: Filter = EVERY_TASK, *, since: str | datetime | None = None
    ) -> AsyncIterator[Snapshot]:
        """As ``Client.export_snapshots``."""
        return self._rows(Snapshot, Export("snapshots", "jsonl", which, since))

    async def export_bytes(
        self,
        table: ExportTable = "snapshots",
        format: ExportFormat = "csv",
        which: Filter = EVERY_TASK,
        *,
        since: str | datetime | None = None,
    ) -> AsyncIterator[bytes]:
        """As ``Client.export_bytes``."""
        export = Export(table, format, which, since)
        async with self._stream(export.call, export.opened) as response:
            async for piece in response.aiter_bytes():
                yield piece

    async def events(
        self,
        task_ids: str | Iterable[str] | None = None,
        label: str | None = None,
        last_event_id: str | None = None,
    ) -> AsyncIterator[Event]:
        """As ``Client.events``."""
        subscription = Subscription(task_ids, label, last_event_id)
        async with aclosing(self._follow(subscription)) as items:
            async for item in items:
                if not isinstance(item, Connected | Heartbeat):
                    yield item

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskDetail:
        """As ``Client.wait``."""
        try:
            async with asyncio.timeout(timeout) as deadline:
                return await self._wait(task_id)
        except TimeoutError:
            if timeout is not None and deadline.expired():
                raise WaitTimeout(task_id, timeout) from None
            raise

    async def _wait(self, task_id: str) -> TaskDetail:
        waiting = Waiting(task_id)
        async with aclosing(self._follow(waiting.subscription)) as items:
            async for item in items:
                if waiting.wants_read(item):
                    try:
                        task = waiting.read(await self._send(waiting.call))
                    except ClientError as exc:
                        waiting.failed(exc)
                        continue
                    if task is not None:
                        return task
        raise AssertionError("an event stream is followed until it fails")

    async def _follow(self, subscription: Subscription) -> AsyncGenerator[Item]:
        while True:
            call = subscription.connecting()
            failure: ClientError | None = None
            try:
                timeout = stream_timeout(self._http.timeout)
                async with self._stream(call, subscription.opened, timeout) as response:
                    async for line in response.aiter_lines():
                        for item in subscription.line(line):
                            yield item
            except ClientError as exc:
                failure = exc
            await asyncio.sleep(subscription.lost(failure))

    async def _bulk(self, action: BulkAction, which: str | Iterable[str] | Filter) -> BulkResult:
        bulk = Bulk(action, which)
        for call in bulk.calls:
            bulk.take(await self._send(call))
        return bulk.result

    async def _rows(self, cls: type[T], export: Export) -> AsyncIterator[T]:
        call = export.call
        async with self._stream(call, export.opened) as response:
            async for line in response.aiter_lines():
                record = row(cls, call, line)
                if record is not None:
                    yield record

    @asynccontextmanager
    async def _stream(
        self,
        call: Call,
        opened: Callable[[Call, httpx.Response], None],
        timeout: httpx.Timeout | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """As ``Client._stream``."""
        request = call.request(self._http, timeout)
        try:
            response = await self._http.send(request, stream=True)
            try:
                if not response.is_success:
                    await response.aread()
                opened(call, response)
                yield response
            finally:
                await response.aclose()
        except httpx.RequestError as exc:
            raise connection_failed(str(call), self._origin, exc) from exc

    async def _send(self, call: Call) -> Any:
        try:
            response = await self._http.send(call.request(self._http))
        except httpx.RequestError as exc:
            raise connection_failed(str(call), self._origin, exc) from exc
        return answer(call, response)
