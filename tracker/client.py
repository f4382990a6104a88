"""The API client: all of tracker's HTTP. One GET per poll, every outcome a FetchResult.

Nothing here raises for a failed poll: timeouts, refused connections, error statuses, bodies that
are not JSON or not a video object all come back as a FetchResult with ``error`` set, so the
poller can write an error snapshot and carry on.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

import httpx

from tracker.config import Secret
from tracker.ids import path_segment
from tracker.models import FetchResult
from tracker.transport import HTTP1Transport
from tracker.video import NotAVideoError, parse_video

if TYPE_CHECKING:
    from tracker.proxy import Proxies

MAX_BODY_BYTES = 1024 * 1024
# Waits the API asks for are honoured up to a day: beyond that they are a broken header.
MAX_ASKED_WAIT = 86400.0
REDACTED = "[redacted]"
MIN_REDACTED_LENGTH = 8
# Characters no database column can hold; JSON can only smuggle them in as \u escapes.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_EXCERPT = 200
_URL_CACHE_SIZE = 100_000
_HEADERS_READ = frozenset({b"retry-after", b"openai-poll-after-ms", b"location", b"content-length"})


class VideoClient:
    """``GET {api_base}/v1/videos/{task_id}`` with a bearer token, through an httpx transport.

    Requests go straight to the transport's ``handle_async_request``: httpx's AsyncClient layer
    (base URLs, cookies, auth and redirect machinery, none of which a poll needs) cost about as
    much as the transport itself (README, Performance). Any httpx transport can be injected:
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
        proxies: Proxies | None = None,
    ) -> None:
        self._timeout = timeout
        self._token = token.reveal()
        self._token_bytes = self._token.encode()
        # A token this short would also match ordinary text: "t" would blank every t.
        self._redacting = len(self._token) >= MIN_REDACTED_LENGTH
        self._base = api_base.rstrip("/") + "/v1/videos/"
        self._headers = httpx.Headers(
            {
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                # Bodies are small; uncompressed ones cost no CPU and cannot expand.
                "Accept-Encoding": "identity",
                "User-Agent": f"tracker/{_version()}",
            }
        )
        self._extensions = {
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        }
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
            async with asyncio.timeout(self._timeout):
                status, headers, content = await self._get(self._url(task_id))
        except (TimeoutError, httpx.TimeoutException):
            return _failure(started, "timeout", f"no complete response within {self._timeout:g}s")
        except httpx.HTTPError as exc:
            return _failure(started, "connection_error", self._redact(_describe(exc)))
        latency_ms = _elapsed_ms(started)
        if content is not None and self._redacting and self._token_bytes in content:
            # A relay that echoes the key in an error would put it in the database and logs.
            content = content.replace(self._token_bytes, REDACTED.encode())
        hints = {
            "retry_after": _retry_after(headers.get(b"retry-after")),
            "poll_after": _poll_after(headers.get(b"openai-poll-after-ms")),
        }
        if content is None:
            return FetchResult(
                http_status=status,
                latency_ms=latency_ms,
                body=None,
                video=None,
                error={"type": "body_too_large", "message": "response body over 1 MiB"},
                **hints,
            )
        body, document = _decode(content)
        if 300 <= status < 400:
            location = self._redact(headers.get(b"location", "?"))
            error: Any = {
                "type": "redirect",
                "message": f"HTTP {status} redirect to {location!r} not followed",
            }
            return FetchResult(status, latency_ms, body, None, error, **hints)
        if status >= 400 or status < 200:
            return FetchResult(
                status, latency_ms, body, None, _api_error(status, document, content), **hints
            )
        if body is None:
            error = {
                "type": "invalid_json",
                "message": f"response is not JSON: {_excerpt(content)}",
            }
            return FetchResult(status, latency_ms, None, None, error, **hints)
        try:
            video = parse_video(document)
        except NotAVideoError as exc:
            error = {"type": "not_a_video", "message": f"response is not a video object: {exc}"}
            return FetchResult(status, latency_ms, body, None, error, **hints)
        return FetchResult(status, latency_ms, body, video, None, **hints)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, REDACTED) if self._redacting else text

    def _url(self, task_id: str) -> httpx.URL:
        """The task's URL, parsed once: parsing costs more than the rest of building a request."""
        url = self._urls.get(task_id)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[task_id] = httpx.URL(self._base + path_segment(task_id))
        return url

    async def _get(self, url: httpx.URL) -> tuple[int, dict[bytes, str], bytes | None]:
        """Status, the headers tracker reads, and the body (None past MAX_BODY_BYTES)."""
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


def _version() -> str:
    try:
        return metadata.version("tracker")
    except metadata.PackageNotFoundError:
        return "dev"


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _failure(started: float, kind: str, message: str) -> FetchResult:
    return FetchResult(
        http_status=None,
        latency_ms=_elapsed_ms(started),
        body=None,
        video=None,
        error={"type": kind, "message": message},
    )


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


def _api_error(status: int, document: Any, content: bytes) -> Any:
    """The API's own error object when the body has one (SPEC §1), else a description."""
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        return document["error"]
    error: dict[str, Any] = {"type": "http_error", "message": f"HTTP {status}"}
    if content:
        error["body"] = _excerpt(content)
    return error


def _excerpt(content: bytes) -> str:
    text = content[:_EXCERPT].decode("utf-8", errors="replace")
    return text + ("…" if len(content) > _EXCERPT else "")


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


class TransferError(Exception):
    """A download or a notification that did not go through; the message says why."""


class ContentClient:
    """Downloads of a finished video's files, ``GET {api_base}/v1/videos/{id}/content``.

    Rare and large, so streamed over stock httpx with a pool of its own, apart from the polls.
    Redirects are followed (relays send files from CDNs); httpx drops the Authorization header
    on any redirect to another origin, so the token stays with the API.
    """

    def __init__(
        self,
        api_base: str,
        token: Secret,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = token.reveal()
        self._base = api_base.rstrip("/") + "/v1/videos/"
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=timeout,
            follow_redirects=True,
            trust_env=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def download(self, task_id: str, variant: str, write: Callable[[bytes], None]) -> str:
        """Stream the variant's bytes into ``write``; return the Content-Type. Raises
        TransferError, after which what was written must be thrown away."""
        url = f"{self._base}{path_segment(task_id)}/content"
        try:
            async with self._http.stream("GET", url, params={"variant": variant}) as response:
                if response.status_code != 200:
                    await response.aread()
                    # A storage host's refusal (a signed link that lapsed) is not the API's:
                    # the next attempt asks the API again and gets a fresh link.
                    where = f"the redirect to {response.url.host} got " if response.history else ""
                    raise TransferError(
                        f"{where}HTTP {response.status_code}: {_excerpt(response.content)}".replace(
                            self._token, REDACTED
                        )
                    )
                async for chunk in response.aiter_bytes():
                    write(chunk)
                return str(response.headers.get("content-type", "application/octet-stream"))
        except httpx.HTTPError as exc:
            raise TransferError(_describe(exc).replace(self._token, REDACTED)) from None


class EventPoster:
    """POSTs notifications to the user's URL; never with the API token."""

    def __init__(self, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None):
        self._http = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """Deliver one event; a 2xx answer is success, anything else raises TransferError."""
        try:
            response = await self._http.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}
            )
        except httpx.HTTPError as exc:
            raise TransferError(_describe(exc)) from None
        if not response.is_success:
            raise TransferError(f"HTTP {response.status_code}: {_excerpt(response.content)}")
