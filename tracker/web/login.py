"""Who may see the dashboard's pages, and the login page (docs/dashboard.md, Signing in).

A page takes what the API takes (auth.py): ``Authorization: Bearer <server token>``, or the
session cookie a browser gets by giving a server token once on the login page. A browser
without either is sent to the login page (303), with the page it asked for as ``next``: a path
of ours, never a token. Forms that change something carry the session's CSRF token; with no
server token configured (the service then listens on the loopback address only) they must come
from our own pages all the same, so that another site open in the browser cannot post them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from tracker.web.auth import (
    SAFE_METHODS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Caller,
    access_of,
    authenticate,
    from_own_site,
)
from tracker.web.templating import render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Viewer:
    """Who looks at a page: how they came in, and the CSRF token their forms carry."""

    caller: Caller
    csrf: str = ""

    @property
    def signed_in(self) -> bool:
        return self.caller.via == "session"


class SignInFirst(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """A page that cannot be shown, said in a page: its status, a title and what to do."""

    def __init__(self, status: int, title: str, detail: str, retry: bool = False) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.retry = status, title, detail, retry


async def viewer(request: Request) -> Viewer:
    """The dependency of every page."""
    try:
        caller = await authenticate(request)
    except HTTPException as exc:
        if exc.status_code == 401 and "authorization" not in request.headers:
            raise SignInFirst(_here(request)) from None
        if exc.status_code == 401:
            raise PageError(401, "Not signed in", "The server token is not valid.") from None
        raise PageError(exc.status_code, "Refused", str(exc.detail)) from None
    if request.method not in SAFE_METHODS and caller.via == "open" and not from_own_site(request):
        raise PageError(403, "Refused", "A form posted from another site is refused.")
    session = caller.session
    return Viewer(caller, access_of(request).csrf_token(session) if session else "")


Seen = Annotated[Viewer, Depends(viewer)]


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (``//host`` is another site)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    access = access_of(request)
    if not access.required:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "error": None, "viewer": None})


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    access = access_of(request)
    target = safe_next(next)
    if not access.required:
        return RedirectResponse(target, status_code=303)
    if not from_own_site(request):
        raise PageError(403, "Refused", "A sign-in posted from another site is refused.")
    if not access.is_token(token.strip()):
        context = {"next": target, "error": "That is not one of this server's tokens."}
        return render(request, "login.html", {**context, "viewer": None}, status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        access.new_session(),
        max_age=SESSION_SECONDS,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
def logout(request: Request, seen: Seen) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/session")
async def session(request: Request) -> Response:
    """``{"signed_in": true}`` or false: the login page asks, to move on at once when the
    cookie was only held back (SameSite=Strict on a link followed from another site), and a
    page whose live updates stopped asks, to say that the session ended. Always 200: a
    browser logs every 401 as an error, and a login page is where one is not signed in yet."""
    try:
        await authenticate(request)
    except HTTPException:
        signed_in = False
    else:
        signed_in = True
    return JSONResponse({"signed_in": signed_in}, headers={"Cache-Control": "no-store"})


def install(app: FastAPI) -> None:
    @app.exception_handler(SignInFirst)
    async def sign_in(request: Request, exc: SignInFirst) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        headers = {"Retry-After": "5"} if exc.retry else None
        context = {"error": exc, "viewer": None}
        return render(request, "error.html", context, status=exc.status, headers=headers)
