"""A Python client of tracker's HTTP API (docs/client.md), for the applications that create
videos: register tasks, read them, follow their events and wait for them to finish.

    with Client("http://127.0.0.1:8080", token=token) as tracker:
        tracker.add([video.id], metadata={"order": "A-17"})
        task = tracker.wait(video.id, timeout=3600)

``Client`` (in ``_sync``) is for blocking code, ``AsyncClient`` (in ``_async``) for asyncio;
both send the same calls and read the same answers (``_calls``, the actions' ``_actions``,
``_export``, ``_feed``, the event stream's lines read by ``_sse``), into the same records
(``_models``). The exceptions (``_errors``):

    ClientError                 anything tracker.client raises on purpose (a tracker.TrackerError)
    ├── ProblemError            the server refused: status, title, detail, errors (RFC 9457)
    │   ├── InvalidRequest      400, 413, 422: refused as sent; errors names each field
    │   ├── Unauthorized        401: no server token, or a wrong one
    │   ├── NotFound            404: no such task
    │   ├── Conflict            409: the task's state does not take the action (refused: why)
    │   └── ServerError         5xx: the server or its database failed; try again
    ├── ConnectionFailed        no answer: unreachable, the connection broke, too slow
    ├── UnexpectedResponse      an answer the API does not give (something else is at the URL)
    └── WaitTimeout             wait() ran out of time (also a TimeoutError)

It talks to the server over HTTP only: it imports nothing of tracker but ``tracker.errors``
and the version (and httpx besides), never the server's side.
"""

from tracker.client._async import AsyncClient
from tracker.client._calls import Filter
from tracker.client._errors import (
    ClientError,
    Conflict,
    ConnectionFailed,
    FieldError,
    InvalidRequest,
    NotFound,
    ProblemError,
    RefusedTask,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    WaitTimeout,
)
from tracker.client._models import (
    AddResult,
    BulkResult,
    Download,
    Event,
    FinishedEvent,
    FinishReason,
    Notification,
    Removal,
    ResetEvent,
    Snapshot,
    SnapshotEvent,
    Task,
    TaskDetail,
)
from tracker.client._sync import Client

__all__ = [
    "AddResult",
    "AsyncClient",
    "BulkResult",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "Download",
    "Event",
    "FieldError",
    "Filter",
    "FinishReason",
    "FinishedEvent",
    "InvalidRequest",
    "NotFound",
    "Notification",
    "ProblemError",
    "RefusedTask",
    "Removal",
    "ResetEvent",
    "ServerError",
    "Snapshot",
    "SnapshotEvent",
    "Task",
    "TaskDetail",
    "Unauthorized",
    "UnexpectedResponse",
    "WaitTimeout",
]
