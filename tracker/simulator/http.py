"""The small HTTP/1.1 server the simulator of the video API runs on (``server``): keep-alive,
Content-Length bodies, JSON answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024
REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    keep_alive: bool
    #: True once the client has hung up, for handlers that take their time.
    client_gone: Callable[[], bool] = field(default=lambda: False)


Answer = tuple[int, dict[str, str], bytes]  # status, extra headers, JSON body
Handler = Callable[[Request], Awaitable[Answer]]


class BadRequest(Exception):
    """The request cannot be taken; answered with this status, then the connection closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DropConnection(Exception):
    """Raised by a handler to close the connection without answering."""


class Truncated(bytes):
    """A body of which only the first ``kept`` bytes are sent before the connection is closed,
    though its headers announce it whole: a transfer broken halfway."""

    kept: int

    def __new__(cls, content: bytes, kept: int) -> Truncated:
        body = super().__new__(cls, content)
        body.kept = kept
        return body


def error_body(message: str, kind: str, code: str | None = None) -> bytes:
    """An OpenAI-style error body ``{"error": {message, type, code}}``."""
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


async def read_request(reader: asyncio.StreamReader, max_body: int | None) -> Request | None:
    """The next request on the connection; None when the client closed it."""
    try:
        request_line = await reader.readline()
    except ValueError:  # a line past the stream's limit
        raise BadRequest(400, "The request line is too long.") from None
    if not request_line.strip():
        return None
    parts = request_line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "Malformed request line.")
    method, target, version = parts
    headers: dict[str, str] = {}
    size = 0
    while True:
        try:
            line = await reader.readline()
        except ValueError:
            raise BadRequest(431, "A header line is too long.") from None
        if line in (b"\r\n", b"\n", b""):
            break
        size += len(line)
        if size > MAX_HEADER_BYTES or len(headers) >= MAX_HEADERS:
            raise BadRequest(431, "Too many or too large headers.")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise BadRequest(400, "Malformed header line.")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest(501, "Chunked request bodies are not supported.")
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise BadRequest(400, "Malformed Content-Length.")
    if max_body is not None and int(length) > max_body:
        raise BadRequest(413, f"The body is over {max_body} bytes.")
    body = await reader.readexactly(int(length)) if int(length) else b""
    keep_alive = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
    return Request(method, target, headers, body, keep_alive)


def response_bytes(
    status: int, extra: dict[str, str], content: bytes, keep_alive: bool, head_only: bool = False
) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    if not any(name.lower() == "content-type" for name in extra):
        head.append("Content-Type: application/json")
    head.append(f"Content-Length: {len(content)}")
    head += [f"{name}: {value}" for name, value in extra.items()]
    if not keep_alive:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else content)


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handle: Handler,
    *,
    max_body: int | None = None,
    client_gone: Callable[[], bool] | None = None,
    request_timeout: float | None = None,
) -> None:
    """Answer requests on one connection until the client closes it. HEAD is answered as GET
    without the body. With ``request_timeout``, a request (or the wait for the next one on a
    kept-alive connection) taking longer ends the connection."""
    try:
        while True:
            try:
                async with asyncio.timeout(request_timeout):
                    request = await read_request(reader, max_body)
            except TimeoutError:
                break
            if request is None:
                break
            head_only = request.method == "HEAD"
            if head_only:
                request.method = "GET"
            request.client_gone = client_gone or reader.at_eof
            keep_alive = request.keep_alive
            try:
                status, extra, content = await handle(request)
            except DropConnection:
                break
            except Exception as exc:  # a bug must show up as a 500, not a hang
                status, extra, content = 500, {}, error_body(repr(exc), "server_error")
                keep_alive = False
            answer = response_bytes(status, extra, content, keep_alive, head_only)
            if isinstance(content, Truncated):
                writer.write(answer[: len(answer) - len(content) + content.kept])
                await writer.drain()
                break
            writer.write(answer)
            await writer.drain()
            if not keep_alive:
                break
    except BadRequest as exc:
        answer = error_body(str(exc), "invalid_request_error")
        with contextlib.suppress(ConnectionError):
            writer.write(response_bytes(exc.status, {}, answer, keep_alive=False))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
