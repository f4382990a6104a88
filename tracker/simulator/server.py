"""The simulator served over HTTP/1.1 (keep-alive) from a thread of its own."""

from __future__ import annotations

import asyncio
import ssl
import threading

from tracker.core.eventloop import run_event_loop
from tracker.simulator.api import Simulator
from tracker.simulator.http import (
    Answer,
    Request,
    serve_connection,
)


class SimulatorServer:
    """Serves a Simulator over HTTP/1.1 (keep-alive) from a thread of its own."""

    def __init__(
        self,
        simulator: Simulator,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.simulator = simulator
        self._host = host
        self._port = port
        self._tls = tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> str:
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        run_event_loop(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            server = await asyncio.start_server(
                self._connection, self._host, self._port, ssl=self._tls
            )
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        server.close()
        # Keep-alive connections would hold wait_closed() open (Python 3.12+): end them, and let
        # their handlers finish (answers being delayed are abandoned) before the loop stops.
        self._closing = True
        for writer in list(self._connections):
            writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections.values()), timeout=5)
        await server.wait_closed()

    async def _handle(self, request: Request) -> Answer:
        return await self.simulator.serve(
            request.method, request.target, request.headers, request.body, request.client_gone
        )

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._connections[writer] = handler
        try:
            await serve_connection(
                reader,
                writer,
                self._handle,
                client_gone=lambda: self._closing or reader.at_eof(),
            )
        finally:
            del self._connections[writer]
