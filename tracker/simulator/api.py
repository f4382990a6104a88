"""The simulated API's state: videos, their scripted answers, what was asked of them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tracker.core.video import Phase
from tracker.simulator.http import (
    Answer,
    DropConnection,
    Truncated,
    error_body,
)
from tracker.simulator.lifecycles import (
    Outcome,
    Reply,
    Style,
    chosen_by,
    completion,
    lifecycle,
    not_found,
    timestamp,
)


@dataclass
class _Video:
    base: dict[str, Any]
    script: list[Reply]
    served: int = 0
    completed: bool = False  # a completed status was served: its content can be downloaded
    envelope: bool = False
    #: A lifecycle's: its completed answer gets the time it is first served, in this style.
    stamped: Style | None = None

    def next_reply(self) -> Reply:
        index = min(self.served, len(self.script) - 1)
        reply = self.script[index]
        self.served += 1
        status = reply.video.get("status")
        if reply.status == 200 and isinstance(status, str) and Phase.of(status) is Phase.SUCCEEDED:
            if not self.completed and self.stamped is not None:
                reply = self.script[index] = completion(reply, self.stamped)
            self.completed = True
        return reply


CONTENT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}
CONTENT_SIZES = {"video": 256 * 1024, "thumbnail": 8 * 1024, "spritesheet": 32 * 1024}


def content_of(video_id: str, variant: str) -> bytes:
    """The bytes the simulator serves for a video's variant: the same every time."""
    block = hashlib.sha256(f"{video_id}/{variant}".encode()).digest()
    size = CONTENT_SIZES[variant]
    return (block * (size // len(block) + 1))[:size]


class Simulator:
    """The API's state: videos, their scripts, and what was asked of them."""

    def __init__(self, token: str = "sim-token") -> None:
        self.token = token
        self._lock = threading.Lock()
        self._videos: dict[str, _Video] = {}
        self._in_flight: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        #: The GETs of ``requests`` that came to /v1/video/query.
        self.queries: Counter[str] = Counter()
        #: Downloads asked for, by (video ID, variant).
        self.downloads: Counter[tuple[str, str]] = Counter()
        self._content_faults: dict[tuple[str, str], list[str]] = {}
        #: GETs of a video that arrived while another GET of the same video was being answered.
        self.overlaps = 0

    def add_video(
        self,
        video_id: str | None = None,
        *,
        outcome: Outcome = "completed",
        queued: int = 1,
        steps: int = 3,
        style: Style = "openai",
        model: str = "sora-2",
        seconds: str = "4",
        size: str = "720x1280",
    ) -> str:
        """A video that is queued for ``queued`` polls, in progress for ``steps`` polls with
        rising progress, then ``outcome`` for good: ``completed`` (at the time that answer is
        first served), ``failed`` (at the progress it reached) or ``vanished`` (404). Without
        an ID it gets one of its style's kind (``video_…``, or ``sora-2:task_…`` for relays).
        Returns its ID."""
        if video_id is None:
            made = secrets.token_hex(12)
            video_id = f"video_{made}" if style == "openai" else f"{model}:task_{made}"
        replies = lifecycle(video_id, outcome, queued, steps, style)
        return self._add(video_id, replies, style, model, seconds, size, stamped=True)

    def script(
        self,
        video_id: str | None,
        replies: list[Reply],
        *,
        style: Style = "openai",
        model: str = "sora-2",
        seconds: str = "4",
        size: str = "720x1280",
    ) -> str:
        """A video that answers ``replies`` in order, then the last one for good."""
        if not replies:
            raise ValueError("a script needs at least one reply")
        video_id = video_id or f"video_{secrets.token_hex(12)}"
        return self._add(video_id, replies, style, model, seconds, size, stamped=False)

    def _add(
        self,
        video_id: str,
        replies: list[Reply],
        style: Style,
        model: str,
        seconds: str,
        size: str,
        stamped: bool,
    ) -> str:
        base = {
            "id": video_id,
            "object": "video",
            "created_at": timestamp(time.time(), style),
            "status": "queued",
            "completed_at": None,
            "error": None,
            "expires_at": None,
            "model": model,
            "progress": 0,
            "remixed_from_video_id": None,
            "seconds": seconds,
            "size": size,
        }
        video = _Video(
            base=base,
            script=list(replies),
            envelope=style == "envelope",
            stamped=style if stamped else None,
        )
        with self._lock:
            self._videos[video_id] = video
        return video_id

    def polls(self, video_id: str) -> int:
        with self._lock:
            return self.requests[video_id]

    async def serve(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        client_gone: Callable[[], bool] = lambda: False,
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request: status, headers, body. A delayed answer is abandoned when
        ``client_gone`` turns true, as a real server notices a client that hung up."""
        split = urlsplit(target)
        path = split.path
        if path == "/_simulator/stats" and method == "GET":
            # Not part of the API: how many video GETs were answered (benchmarks compare it
            # with the snapshots written).
            with self._lock:
                served = sum(self.requests.values())
            return 200, {}, json.dumps({"requests": served, "overlaps": self.overlaps}).encode()
        if headers.get("authorization") != f"Bearer {self.token}":
            message = (
                "Missing bearer token."
                if "authorization" not in headers
                else "Incorrect API key provided."
            )
            return 401, {}, error_body(message, "invalid_request_error", "invalid_api_key")
        if path == "/v1/videos" and method == "POST":
            return self._create(body, headers.get("content-type", ""))
        if path == "/v1/video/query" and method == "GET":
            asked = parse_qs(split.query).get("id")
            if not asked:
                return 400, {}, error_body("The id parameter is missing.", "invalid_request_error")
            return await self._video(asked[0], client_gone, queried=True)
        prefix = "/v1/videos/"
        if path.startswith(prefix) and path.endswith("/content") and method == "GET":
            return self._content(unquote(path[len(prefix) : -len("/content")]), target)
        if not path.startswith(prefix) or "/" in path[len(prefix) :]:
            return 404, {}, error_body(f"No route for {method} {path}", "invalid_request_error")
        if method != "GET":
            return 405, {}, error_body(f"{method} is not allowed", "invalid_request_error")
        return await self._video(unquote(path[len(prefix) :]), client_gone)

    async def _video(
        self, video_id: str, client_gone: Callable[[], bool], queried: bool = False
    ) -> Answer:
        """The next answer of the video's script."""
        with self._lock:
            self.requests[video_id] += 1
            if queried:
                self.queries[video_id] += 1
            if self._in_flight[video_id]:
                self.overlaps += 1
            self._in_flight[video_id] += 1
            video = self._videos.get(video_id)
            reply = video.next_reply() if video is not None else None
        try:
            if reply is None:
                return 404, {}, not_found(video_id)
            await _wait_unless(client_gone, reply.delay)
            if reply.drop:
                raise DropConnection
            assert video is not None
            if reply.raw is not None:
                content = reply.raw
            elif video.envelope:
                content = json.dumps(_in_envelope({**video.base, **reply.video})).encode()
            else:
                content = json.dumps({**video.base, **reply.video}).encode()
            return reply.status, dict(reply.headers), content
        finally:
            with self._lock:
                self._in_flight[video_id] -= 1

    def break_downloads(
        self, video_id: str, variant: str = "video", times: int = 1, how: str = "drop"
    ) -> None:
        """Make the next ``times`` downloads of the variant fail: ``drop`` the connection
        halfway through the body, or answer ``500`` or ``403``."""
        with self._lock:
            self._content_faults.setdefault((video_id, variant), []).extend([how] * times)

    def _content(self, video_id: str, target: str) -> Answer:
        variant = parse_qs(urlsplit(target).query).get("variant", ["video"])[0]
        with self._lock:
            self.downloads[(video_id, variant)] += 1
            video = self._videos.get(video_id)
            faults = self._content_faults.get((video_id, variant))
            fault = faults.pop(0) if faults else None
        if video is None or not video.completed:
            return (
                404,
                {},
                error_body(
                    f"Video '{video_id}' has no content yet.",
                    "invalid_request_error",
                    "video_not_ready",
                ),
            )
        if variant not in CONTENT_TYPES:
            return 400, {}, error_body(f"Unknown variant {variant!r}.", "invalid_request_error")
        if fault in ("403", "500"):
            return int(fault), {}, error_body(f"Failure {fault} for the test.", "server_error")
        content = content_of(video_id, variant)
        headers = {"Content-Type": CONTENT_TYPES[variant]}
        if fault == "drop":
            return 200, headers, Truncated(content, len(content) // 2)
        return 200, headers, content

    def _create(self, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
        """A new video; its prompt picks what it does (``chosen_by``)."""
        if content_type.startswith("multipart/form-data"):
            request: object = _form_fields(body, content_type)  # as OpenAI's SDK sends it
        else:
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                return 400, {}, error_body("The body is not JSON.", "invalid_request_error")
        if not isinstance(request, dict):
            return 400, {}, error_body("The body is not a JSON object.", "invalid_request_error")
        outcome, style = chosen_by(str(request.get("prompt", "")))
        video_id = self.add_video(
            outcome=outcome,
            style=style,
            model=str(request.get("model", "sora-2")),
            seconds=str(request.get("seconds", "4")),
            size=str(request.get("size", "720x1280")),
        )
        with self._lock:
            video = self._videos[video_id]
            document = {**video.base, **video.script[0].video}
        if video.envelope:
            document = _in_envelope(document)
        return 200, {}, json.dumps(document).encode()


async def _wait_unless(gone: Callable[[], bool], seconds: float) -> None:
    """Sleep ``seconds``; raise DropConnection as soon as ``gone()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        if gone():
            raise DropConnection
        await asyncio.sleep(min(0.01, remaining))


def _in_envelope(video: dict[str, Any]) -> dict[str, Any]:
    """A video object as relays with envelopes answer it."""
    data = {key: value for key, value in video.items() if key not in ("id", "status", "error")}
    data["task_id"], data["state"] = video["id"], video["status"]
    error = video.get("error")
    if isinstance(error, dict):
        data["fail_reason"] = error.get("message")
    return {"code": 0, "msg": "success", "data": data}


def _form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a ``multipart/form-data`` body."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    form = BytesParser(policy=HTTP).parsebytes(head + body)
    fields = {}
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and part.get_content_maintype() == "text":
            fields[name] = str(part.get_content())
    return fields
