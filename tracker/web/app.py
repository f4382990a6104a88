"""The HTTP service in one app: the JSON API under ``/v1``, the event stream, health, metrics,
the API's webhooks and the documentation; the dashboard's pages (``pages``) on the same
routes' data. One route table per part, registered here."""

from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from tracker._version import __version__
from tracker.web import (
    acting,
    actions,
    api,
    exports,
    insights,
    login,
    operations,
    pages,
    problems,
    reports,
)
from tracker.web.auth import Access
from tracker.web.events import Feed
from tracker.web.limits import DEFAULT_BODY_BYTES, BodyLimit
from tracker.web.service import Service
from tracker.web.summary import Summary
from tracker.web.webhooks import MAX_BODY_BYTES as WEBHOOK_BODY_BYTES

STATIC = Path(str(files("tracker.web") / "static"))
# 10,000 IDs of 256 characters (registered, or acted on at once), with room for labels and
# metadata.
REGISTER_BODY_BYTES = 8 * 1024 * 1024
DESCRIPTION = """Register video-generation tasks, follow them until they finish, read every
status they went through. Errors are RFC 9457 problem details naming the offending field.
Authenticate with `Authorization: Bearer <server token>`."""


def body_limit(method: str, path: str) -> int:
    if method == "POST" and (path in ("/v1/tasks", "/register") or path.startswith("/v1/bulk/")):
        return REGISTER_BODY_BYTES
    if method == "POST" and path in ("/webhooks", "/"):
        return WEBHOOK_BODY_BYTES
    return DEFAULT_BODY_BYTES


def create_app(service: Service) -> FastAPI:
    """The app over ``service``; ``app.state.stopping`` ends its event streams."""
    app = FastAPI(
        title="tracker",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by operations.add_docs, behind the token
    )
    app.state.service = service
    app.state.access = Access(service.settings.server_tokens, service.clock)
    app.state.stopping = asyncio.Event()
    app.state.feed = Feed(service.database, app.state.stopping)
    app.state.inbox = operations.webhook_inbox(service)
    app.state.summary = Summary(service.database.reads, service.clock)
    problems.install(
        app,
        lambda: [
            *app.router.routes,
            *api.router.routes,
            *actions.router.routes,
            *operations.router.routes,
        ],
    )
    app.include_router(api.router)
    app.include_router(actions.router)
    app.include_router(reports.router)
    app.include_router(exports.router)
    app.include_router(operations.router)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(acting.router)
    app.include_router(insights.router)
    login.install(app)
    operations.add_webhook_routes(app)
    operations.add_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    problems.document(app)
    app.add_middleware(BodyLimit, limit=body_limit)
    if service.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(service.settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    return app
