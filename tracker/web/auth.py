"""Who may use the service (docs/http-api.md, Security).

Programs send ``Authorization: Bearer <server token>``. A browser signs in once on the login
page and then carries a session cookie (HttpOnly, SameSite=Strict, Secure behind HTTPS) signed
with a key derived from the server tokens: the token itself never travels in the cookie, and
changing the tokens signs every browser out. What a cookie-carrying browser sends to change
something must also come from our own pages: same origin, and a CSRF token bound to the session.
Without any server token configured, the service listens on the loopback address only and asks
for nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from tracker.core.clock import Clock
from tracker.core.secrets import Secret

SESSION_COOKIE = "tracker_session"
SESSION_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="A server token (TRACKER_SERVER_TOKENS)")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="A dashboard session, from the login page"
)


@dataclass(frozen=True)
class Caller:
    """Who made a request: ``bearer`` (a program), ``session`` (a signed-in browser, with its
    session ID), or ``open`` (no server token is configured)."""

    via: str
    session: str | None = None


class Access:
    def __init__(self, tokens: Sequence[Secret], clock: Clock) -> None:
        self._tokens = [token.reveal().encode() for token in tokens]
        self._clock = clock
        material = b"\n".join(sorted(self._tokens))
        self._session_key = hmac.new(material, b"tracker session v1", hashlib.sha256).digest()
        self._csrf_key = hmac.new(material, b"tracker csrf v1", hashlib.sha256).digest()

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def is_token(self, presented: str) -> bool:
        """Whether ``presented`` is a server token, compared in constant time with each one."""
        given = presented.encode("utf-8", "surrogateescape")
        matches = [hmac.compare_digest(given, token) for token in self._tokens]
        return any(matches)

    def new_session(self) -> str:
        expiry = int(self._clock.now().timestamp()) + SESSION_SECONDS
        body = f"{expiry}.{_b64(secrets.token_bytes(16))}"
        return f"{body}.{_mac(self._session_key, body)}"

    def session_of(self, cookie: str) -> str | None:
        """The session ID a cookie carries, or None if it is forged, altered or expired."""
        try:
            expiry, session, mac = cookie.split(".")
            fresh = int(expiry) > self._clock.now().timestamp()
        except ValueError:
            return None
        expected = _mac(self._session_key, f"{expiry}.{session}").encode()
        if not hmac.compare_digest(mac.encode("utf-8", "surrogateescape"), expected):
            return None
        return session if fresh else None

    def csrf_token(self, session: str) -> str:
        return _mac(self._csrf_key, session)

    def csrf_ok(self, session: str, presented: str | None) -> bool:
        if presented is None:
            return False
        expected = self.csrf_token(session).encode()
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _mac(key: bytes, message: str) -> str:
    return _b64(hmac.new(key, message.encode(), hashlib.sha256).digest())


def access_of(request: Request) -> Access:
    access: Access = request.app.state.access
    return access


def unauthorized(
    detail: str = "A server token is needed: Authorization: Bearer <token>.",
) -> Exception:
    challenge = {"WWW-Authenticate": 'Bearer realm="tracker"'}
    return HTTPException(401, detail=detail, headers=challenge)


async def caller(
    request: Request,
    _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _session_cookie: Annotated[str | None, Depends(_cookie)],
) -> Caller:
    """The dependency of every guarded route (its parameters declare the two ways in, for the
    OpenAPI document)."""
    return await authenticate(request)


async def authenticate(request: Request) -> Caller:
    """A server token, or a browser session whose requests that change something come from our
    own pages; raises 401 (or 403 for a request from elsewhere)."""
    access = access_of(request)
    if not access.required:
        return Caller("open")
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        if access.is_token(credentials.strip()):
            return Caller("bearer")  # browsers never add this header by themselves: no CSRF
        raise unauthorized("The server token is not valid.")
    cookie = request.cookies.get(SESSION_COOKIE)
    session = access.session_of(cookie) if cookie else None
    if session is None:
        raise unauthorized()
    if request.method not in SAFE_METHODS:
        await _check_same_origin(request, access, session)
    return Caller("session", session)


def from_own_site(request: Request) -> bool:
    """Whether the browser says the request comes from our own pages (or says nothing)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    return site in (None, "same-origin") and origin in (None, own)


async def _check_same_origin(request: Request, access: Access, session: str) -> None:
    if not from_own_site(request):
        raise HTTPException(403, detail="A request from another site is refused.")
    presented = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if presented is None and content_type.startswith("application/x-www-form-urlencoded"):
        value = (await request.form()).get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not access.csrf_ok(session, presented):
        raise HTTPException(403, detail="The form is missing its CSRF token, or it is stale.")


Guarded = Annotated[Caller, Depends(caller)]
