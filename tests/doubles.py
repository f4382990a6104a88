"""Stand-ins the tests share: a settable clock, answers as the API client gives them, and a
notification receiver over real HTTP."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tracker.core.models import Failure, FetchResult
from tracker.core.video import Video

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NOTIFY_SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="  # base64("secret-key-for-tests")


class FakeClock:
    """A clock the test sets: ``now()`` stays where it is until ``advance``."""

    def __init__(self, now: datetime = START) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def ok(
    status: str = "in_progress",
    progress: int | None = 50,
    *,
    retry_after: float | None = None,
    poll_after: float | None = None,
) -> FetchResult:
    """A successful poll's answer."""
    body = f'{{"status": "{status}"}}'
    return FetchResult(200, 1.0, body, Video(status, progress), None, retry_after, poll_after)


def http_error(status: int, *, retry_after: float | None = None) -> FetchResult:
    """A failed poll's answer with an error status."""
    return FetchResult.failed(
        Failure.HTTP_STATUS, f"HTTP {status}", 1.0, http_status=status, retry_after=retry_after
    )


class Receiver:
    """A notification receiver over HTTP that answers with scripted statuses and keeps every
    request it got."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def deliveries(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(headers, json.loads(body)) for headers, body in self.requests]
