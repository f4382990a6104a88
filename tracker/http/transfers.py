"""The rare, large or slow exchanges beside the polls: a finished video's files, and the
notifications tracker sends. Both over stock httpx, with pools of their own. A request this
machine has no resources for raises LocalResourceError, as a poll's does: nothing was tried."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tracker.core.ids import path_segment
from tracker.core.secrets import Secret
from tracker.errors import LocalResourceError
from tracker.http.messages import Redactor, describe, excerpt

# The API's own refusals of a download: asking again would get the same answer.
_FINAL_STATUSES = frozenset({400, 403, 410})


class TransferError(Exception):
    """A download or a notification that did not go through; the message says why."""


class TransferRefused(TransferError):
    """The API refused a download for good (400, 403, 410 from the API itself): retrying would
    not help. The same statuses from a storage host it redirected to are a lapsed signed link,
    worth another try, and raise plain TransferError."""


class ContentClient:
    """Downloads of a finished video's files, ``GET {api_base}/v1/videos/{id}/content``.

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
        self._redactor = Redactor(token.reveal())
        self._base = api_base.rstrip("/") + "/v1/videos/"
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token.reveal()}"},
            timeout=timeout,
            follow_redirects=True,
            trust_env=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def download(self, task_id: str, variant: str, write: Callable[[bytes], None]) -> str:
        """Stream the variant's bytes into ``write``; return the Content-Type. Raises
        TransferError (TransferRefused when final), after which what was written must be
        thrown away."""
        url = f"{self._base}{path_segment(task_id)}/content"
        try:
            async with self._http.stream("GET", url, params={"variant": variant}) as response:
                if response.status_code != 200:
                    await response.aread()
                    redirected = bool(response.history)
                    where = f"the redirect to {response.url.host} got " if redirected else ""
                    message = self._redactor.text(
                        f"{where}HTTP {response.status_code}: {excerpt(response.content)}"
                    )
                    if not redirected and response.status_code in _FINAL_STATUSES:
                        raise TransferRefused(message)
                    raise TransferError(message)
                async for chunk in response.aiter_bytes():
                    write(chunk)
                return str(response.headers.get("content-type", "application/octet-stream"))
        except httpx.HTTPError as exc:
            shortage = LocalResourceError.of(exc, "no connection for a download could be opened")
            if shortage is not None:
                raise shortage from None
            raise TransferError(self._redactor.text(describe(exc))) from None


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
            shortage = LocalResourceError.of(
                exc, "no connection for a notification could be opened"
            )
            if shortage is not None:
                raise shortage from None
            raise TransferError(describe(exc)) from None
        if not response.is_success:
            raise TransferError(f"HTTP {response.status_code}: {excerpt(response.content)}")
