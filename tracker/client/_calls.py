"""The API's calls as data and their answers read, for both clients: ``Client`` and
``AsyncClient`` only send what is built here and hand back what is read here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from tracker._version import __version__
from tracker.client._errors import UnexpectedResponse, problem_of
from tracker.client._models import (
    AddResult,
    FinishReason,
    Metadata,
    Removal,
    Snapshot,
    Task,
    TaskDetail,
    read,
)

# The most IDs the server registers in one call (docs/http-api.md); more are sent in several.
MAX_IDS_PER_CALL = 10_000
# The largest page the server gives: the fewest calls to read every task or snapshot.
PAGE_SIZE = 1000
DEFAULT_TIMEOUT_SECONDS = 30.0

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One request of the API. ``index_base`` is the index, in the caller's own list, of the
    first item the body sends, so that a refusal names the caller's index."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    index_base: int = 0

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def request(
        self,
        http: httpx.Client | httpx.AsyncClient,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Request:
        return http.build_request(
            self.method,
            self.path,
            params=list(self.params) or None,
            json=self.body,
            headers=dict(self.headers),
            timeout=timeout if timeout is not None else http.timeout,
        )


def answer(call: Call, response: httpx.Response) -> Any:
    """The JSON of a success (its body read), or the exception its error status stands for."""
    if not response.is_success:
        raise problem_of(
            str(call), response.status_code, response.content, index_base=call.index_base
        )
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponse(
            f"{call}: {response.status_code} with a body that is not JSON: {response.text!r:.120}"
        ) from None


def opened(call: Call, response: httpx.Response, media_type: str) -> None:
    """Raise what a refused stream stands for (its body read), or if it is not of
    ``media_type``."""
    if not response.is_success:
        raise problem_of(str(call), response.status_code, response.content)
    kind = response.headers.get("content-type", "")
    if not kind.startswith(media_type):
        raise UnexpectedResponse(f"{call}: {response.status_code} {kind or 'no content type'}")


class Connection:
    """What both clients hold the same way: httpx's settings, where the server is (for
    messages, without any credentials in the URL) and a repr without the token."""

    def __init__(self, base_url: str | httpx.URL, token: str | None) -> None:
        url = httpx.URL(base_url)
        self._origin = str(url.copy_with(username=None, password=None, query=None, fragment=None))
        self._authorized = token is not None

    @staticmethod
    def options(
        base_url: str | httpx.URL, token: str | None, timeout: float | httpx.Timeout | None
    ) -> dict[str, Any]:
        headers = {"User-Agent": f"tracker-client/{__version__}", "Accept": "application/json"}
        if token is not None:
            if not token or not (token.isascii() and token.isprintable()) or " " in token:
                # Said without the token: httpx's own error would quote it.
                raise ValueError("the server token must be printable ASCII without spaces")
            headers["Authorization"] = f"Bearer {token}"
        return {
            "base_url": base_url,
            "headers": headers,
            "timeout": timeout,
            "follow_redirects": False,
        }

    def __repr__(self) -> str:
        token = "set" if self._authorized else "none"
        return f"<{type(self).__name__} {self._origin} token={token}>"


@dataclass(frozen=True)
class Filter:
    """Which tasks, as ``GET /v1/tasks`` selects them (docs/http-api.md): each criterion set
    must hold; ``Filter()`` matches every task. ``status`` is the last status, any case;
    ``prefix`` the start of the ID; ``error`` text anywhere in the last error, any case.
    The bulk actions take the first five criteria only (the server refuses the others)."""

    status: str | None = None
    finished: bool | None = None
    label: str | None = None
    provider: str | None = None
    prefix: str | None = None
    finish_reason: FinishReason | str | None = None
    error: str | None = None

    def body(self) -> dict[str, Any]:
        """The criteria set, as a JSON object."""
        given = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {name: value for name, value in given.items() if value is not None}

    def params(self) -> list[tuple[str, str]]:
        """The criteria set, as query parameters."""
        return [
            (name, str(value).lower() if isinstance(value, bool) else str(value))
            for name, value in self.body().items()
        ]


EVERY_TASK = Filter()


def batches(ids: str | Iterable[str]) -> list[tuple[int, list[str]]]:
    """The IDs, once each in the order given, in lists of up to ``MAX_IDS_PER_CALL``, each
    with the index of its first in the whole list."""
    unique = list(dict.fromkeys([ids] if isinstance(ids, str) else ids))
    return [
        (start, unique[start : start + MAX_IDS_PER_CALL])
        for start in range(0, len(unique), MAX_IDS_PER_CALL)
    ]


def task_path(task_id: str) -> str:
    """The task's URL: its ID is one path segment, whatever characters it has."""
    return "/v1/tasks/" + quote(task_id, safe="")


def get_task(task_id: str) -> Call:
    return Call("GET", task_path(task_id))


def read_task(value: object) -> TaskDetail:
    return read(TaskDetail, value)


def remove_task(task_id: str) -> Call:
    return Call("DELETE", task_path(task_id))


def read_removal(value: object) -> Removal:
    return read(Removal, value)


class Adding:
    """``add``: the IDs, once each in the order given, in calls of up to ``MAX_IDS_PER_CALL``;
    their answers summed."""

    def __init__(
        self,
        ids: str | Iterable[str],
        label: str | None,
        metadata: Metadata | None,
        provider: str | None,
    ) -> None:
        shared = {"label": label, "metadata": metadata, "provider": provider}
        common = {key: value for key, value in shared.items() if value is not None}
        self.calls = [
            Call("POST", "/v1/tasks", body={"ids": batch, **common}, index_base=start)
            for start, batch in batches(ids)
        ]
        self._added: list[str] = []
        self._existing: list[str] = []

    def take(self, value: object) -> None:
        if not isinstance(value, dict):
            raise UnexpectedResponse(f"POST /v1/tasks answered {value!r:.120}")
        self._added += value.get("added", [])
        self._existing += value.get("existing", [])

    @property
    def result(self) -> AddResult:
        return AddResult(tuple(self._added), tuple(self._existing))


class Pages(Generic[T]):
    """A list the API gives a page at a time: the call for the next page, then what it held;
    ``done`` once a page has no ``next_cursor``."""

    def __init__(
        self,
        path: str,
        params: Iterable[tuple[str, str]],
        key: str,
        item: Callable[[object], T],
        page_size: int,
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be 1 to {PAGE_SIZE}")
        self._path = path
        self._params = (*params, ("limit", str(page_size)))
        self._key = key
        self._item = item
        self._cursor: str | None = None
        self.done = False

    def call(self) -> Call:
        cursor = (("cursor", self._cursor),) if self._cursor is not None else ()
        return Call("GET", self._path, (*self._params, *cursor))

    def take(self, value: object) -> list[T]:
        if not isinstance(value, dict) or not isinstance(value.get(self._key), list):
            raise UnexpectedResponse(f"GET {self._path} answered {value!r:.120}")
        self._cursor = value.get("next_cursor")
        self.done = self._cursor is None
        return [self._item(item) for item in value[self._key]]


def task_pages(
    *,
    status: str | None,
    finished: bool | None,
    label: str | None,
    provider: str | None,
    prefix: str | None,
    page_size: int,
) -> Pages[Task]:
    params = Filter(status, finished, label, provider, prefix).params()
    return Pages("/v1/tasks", params, "tasks", lambda value: read(Task, value), page_size)


def snapshot_pages(task_id: str, page_size: int) -> Pages[Snapshot]:
    path = task_path(task_id) + "/snapshots"
    return Pages(path, (), "snapshots", lambda value: read(Snapshot, value), page_size)
