"""Helpers for tests, the project's and its users': the HTTP app served on 127.0.0.1 from a
thread of its own (so a test may call it with a plain client or drive a browser at it).

    with RunningApp(settings, database) as url:
        httpx.get(f"{url}/v1/tasks", headers={"Authorization": "Bearer …"})
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from types import TracebackType

from tracker.core.clock import Clock, SystemClock
from tracker.core.eventloop import run_event_loop
from tracker.settings import Settings
from tracker.store import Database
from tracker.web.server import Limits

STARTUP_SECONDS = 30.0


class RunningApp:
    """``tracker serve`` in a thread: the app on a free port of 127.0.0.1 (unless the settings
    name one), until the block ends."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        clock: Clock | None = None,
        limits: Limits | None = None,
    ) -> None:
        if settings.http_port is None:
            settings = replace(settings, http_port=0)
        self._settings = settings
        self._database = database
        self._clock = clock or SystemClock()
        self._limits = limits
        self._ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="tracker-app", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._settings.http_host}:{self._ports['--http-port']}"

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(STARTUP_SECONDS):
            raise TimeoutError("the app did not start")
        if self._error is not None:
            raise self._error
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=STARTUP_SECONDS)

    def _run(self) -> None:
        try:
            run_event_loop(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        from tracker.daemon.serving import serve

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()

        def ready(ports: dict[str, int]) -> None:
            self._ports = ports
            self._ready.set()

        await serve(
            self._settings,
            self._database,
            self._clock,
            stop=self._stop,
            on_ready=ready,
            limits=self._limits,
        )
