"""The API client: one GET per poll, every outcome a FetchResult.

Nothing here raises for a failed poll: timeouts, refused connections, error statuses, bodies that
are not JSON or not a video object all come back as a FetchResult with ``failure`` set, so the
poller can write an error snapshot and carry on. A request this machine had no resources for
(``tracker.errors.LocalResourceError``: no open file, buffer, memory or port left) is raised
instead: it is no answer about the task, and the poller sends it again (docs/failures.md).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tracker._version import __version__
from tracker.core.ids import DEFAULT_STATUS_PATH, StatusPath
from tracker.core.models import Failure, FetchResult
from tracker.core.secrets import Secret
from tracker.core.video import NotAVideoError, OtherTaskError, RelayError, parse_video, relay_error
from tracker.errors import LocalResourceError
from tracker.http.messages import Redactor, describe, excerpt
from tracker.http.transport import HTTP1Transport
from tracker.settings.proxies import Proxies

MAX_BODY_BYTES = 1024 * 1024
# Waits the API asks for are honoured up to a day: beyond that they are a broken header.
MAX_ASKED_WAIT = 86400.0
# Characters no database column can hold; JSON can only smuggle them in as \u escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_URL_CACHE_SIZE = 100_000
_HEADERS_READ = frozenset({b"retry-after", b"openai-poll-after-ms", b"location", b"content-length"})


class VideoClient:
    """``GET {api_base}/v1/videos/{task_id}`` with a bearer token, through an httpx transport.

    ``status_path`` is another place to ask, for relays that answer elsewhere (a template such
    as ``/v1/video/query?id={id}``; ``tracker.core.ids.StatusPath``); a bad one raises
    ValueError.

    Requests go straight to the transport's ``handle_async_request``: httpx's AsyncClient layer
    (base URLs, cookies, auth and redirect machinery, none of which a poll needs) cost about as
    much as the transport itself (docs/performance.md); tracker's own transport is handed the
    request's lines and gives back status, headers and body without httpx's Request and
    Response objects, which cost as much again. Any httpx transport can be injected:
    ``httpx.MockTransport`` in unit tests, ``httpx.AsyncHTTPTransport`` for stock httpx.
    """

    def __init__(
        self,
        api_base: str,
        token: Secret,
        *,
        timeout: float,
        max_connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
        status_path: str = DEFAULT_STATUS_PATH,
        proxies: Proxies | None = None,
    ) -> None:
        self._status_path = StatusPath(status_path)
        self._timeout = timeout
        self._redactor = Redactor(token.reveal())
        self._base = api_base.rstrip("/")
        self._headers = httpx.Headers(
            {
                "Authorization": f"Bearer {token.reveal()}",
                "Accept": "application/json",
                # Bodies are small; uncompressed ones cost no CPU and cannot expand.
                "Accept-Encoding": "identity",
                "User-Agent": f"tracker/{__version__}",
            }
        )
        self._extensions = {
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        }
        # The same headers as lines, Host first as httpx sends it: for tracker's own transport,
        # which is handed them without an httpx.Request.
        self._header_lines = b"".join(
            name + b": " + value + b"\r\n"
            for name, value in [(b"Host", httpx.URL(self._base).netloc), *self._headers.raw]
        )
        self._urls: dict[str, httpx.URL] = {}
        # A redirect could carry the token to another host: transports never follow them.
        self._transport = transport or HTTP1Transport(
            max_connections=max_connections, max_body=MAX_BODY_BYTES, proxies=proxies
        )

    async def __aenter__(self) -> VideoClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def fetch(self, task_id: str) -> FetchResult:
        started = time.perf_counter()
        try:
            status, headers, content = await self._get(self._url(task_id))
        except (TimeoutError, httpx.TimeoutException) as exc:
            # Waiting for a connection of the pool, or making one, says so; the answer's own
            # wait, the usual case, reads as it always has.
            waited = isinstance(exc, httpx.PoolTimeout | httpx.ConnectTimeout)
            message = str(exc) if waited else f"no complete response within {self._timeout:g}s"
            return FetchResult.failed(Failure.TIMEOUT, message, _elapsed_ms(started))
        except httpx.HTTPError as exc:
            # Another transport (httpx's own) says so in the OS error it raised from.
            shortage = LocalResourceError.of(exc, "no connection to the API could be opened")
            if shortage is not None:
                raise shortage from exc
            message = self._redactor.text(describe(exc))
            return FetchResult.failed(Failure.CONNECTION, message, _elapsed_ms(started))
        latency_ms = _elapsed_ms(started)
        hints: dict[str, Any] = {
            "http_status": status,
            "retry_after": _retry_after(headers.get(b"retry-after")),
            "poll_after": _poll_after(headers.get(b"openai-poll-after-ms")),
        }
        if content is None:
            message = "response body over 1 MiB"
            return FetchResult.failed(Failure.BODY_TOO_LARGE, message, latency_ms, **hints)
        # A relay that echoes the key in an error would put it in the database and logs.
        content = self._redactor.content(content)
        body, document = _decode(content)
        if 300 <= status < 400:
            location = self._redactor.text(headers.get(b"location", "?"))
            message = f"HTTP {status} redirect to {location!r} not followed"
            return FetchResult.failed(Failure.REDIRECT, message, latency_ms, body=body, **hints)
        if status >= 400 or status < 200:
            if isinstance(document, dict) and isinstance(document.get("error"), dict):
                return FetchResult(
                    status,
                    latency_ms,
                    body,
                    None,
                    document["error"],
                    hints["retry_after"],
                    hints["poll_after"],
                    failure=Failure.API_ERROR,
                )
            relay = relay_error(document)
            if relay is not None:
                return _relay_failure(relay, latency_ms, body, hints)
            failed = FetchResult.failed(
                Failure.HTTP_STATUS, f"HTTP {status}", latency_ms, body=body, **hints
            )
            if content:  # what the server said instead of an error object, for the record
                failed.error["body"] = excerpt(content)
            return failed
        if body is None:
            message = f"response is not JSON: {excerpt(content)}"
            return FetchResult.failed(Failure.INVALID_JSON, message, latency_ms, **hints)
        try:
            video = parse_video(document, task_id)
        except RelayError as exc:
            return _relay_failure(exc, latency_ms, body, hints)
        except NotAVideoError as exc:
            message = f"response is not a video object: {exc}"
            return FetchResult.failed(Failure.NOT_A_VIDEO, message, latency_ms, body=body, **hints)
        except OtherTaskError as exc:
            # Another task's status stored as this one's would be worse than none.
            return FetchResult.failed(Failure.ID_MISMATCH, str(exc), latency_ms, body=body, **hints)
        return FetchResult(
            status, latency_ms, body, video, None, hints["retry_after"], hints["poll_after"]
        )

    def _url(self, task_id: str) -> httpx.URL:
        """The task's URL, parsed once: parsing costs more than the rest of building a request."""
        url = self._urls.get(task_id)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[task_id] = httpx.URL(self._base + self._status_path(task_id))
        return url

    async def _get(self, url: httpx.URL) -> tuple[int, dict[bytes, str], bytes | None]:
        """Status, the headers tracker reads, and the body (None past MAX_BODY_BYTES), within
        the client's timeout (else TimeoutError or httpx.TimeoutException)."""
        if isinstance(self._transport, HTTP1Transport):
            status, raw, content = await self._transport.exchange(
                b"GET", url, self._header_lines, timeout=self._timeout
            )
            headers = {
                lowered: value.decode("latin-1")
                for name, value in raw
                if (lowered := name.lower()) in _HEADERS_READ
            }
            return status, headers, None if len(content) > MAX_BODY_BYTES else content
        async with asyncio.timeout(self._timeout):
            return await self._get_via_httpx(url)

    async def _get_via_httpx(self, url: httpx.URL) -> tuple[int, dict[bytes, str], bytes | None]:
        request = httpx.Request("GET", url, headers=self._headers, extensions=self._extensions)
        response = await self._transport.handle_async_request(request)
        try:
            headers = {
                lowered: value.decode("latin-1")
                for name, value in response.headers.raw
                if (lowered := name.lower()) in _HEADERS_READ
            }
            if isinstance(response.stream, httpx.ByteStream):  # read by the transport already
                content = response.content
                too_large = len(content) > MAX_BODY_BYTES
                return response.status_code, headers, None if too_large else content
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                return response.status_code, headers, None
            received = bytearray()
            async for chunk in response.aiter_bytes():
                received += chunk
                if len(received) > MAX_BODY_BYTES:
                    return response.status_code, headers, None
            return response.status_code, headers, bytes(received)
        finally:
            await response.aclose()


def _relay_failure(
    relay: RelayError, latency_ms: float, body: str | None, hints: dict[str, Any]
) -> FetchResult:
    """A relay's envelope saying the request failed: its own code and message, kept."""
    failed = FetchResult.failed(Failure.RELAY_ERROR, relay.message, latency_ms, body=body, **hints)
    failed.error["code"] = relay.code
    return failed


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _decode(content: bytes) -> tuple[str | None, Any]:
    """The body as text and as decoded JSON, or (None, None) when it is not strict JSON
    (NaN and Infinity, which Python accepts and PostgreSQL refuses, are not JSON)."""
    try:
        text = content.decode("utf-8")
        document = _JSON.decode(text)
    except (UnicodeDecodeError, ValueError):
        return None, None
    return text, _storable(document) if b"\\u" in content else document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _storable(value: Any) -> Any:
    """NUL and lone surrogates (from \\u escapes) replaced, so every string can be stored."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(0.0, seconds), MAX_ASKED_WAIT) if seconds == seconds else None


def _poll_after(value: str | None) -> float | None:
    """Seconds from an ``openai-poll-after-ms`` header."""
    if not value:
        return None
    try:
        milliseconds = float(value)
    except ValueError:
        return None
    return min(milliseconds / 1000, MAX_ASKED_WAIT) if milliseconds >= 0 else None
