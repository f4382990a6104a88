"""The routes that are not the API itself: ``/healthz`` for load balancers, ``/metrics`` for
Prometheus, the receiver of the API's webhooks, and the OpenAPI document with its interactive
documentation (served from the package: the machine may have no internet)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from tracker.core.models import NewTask
from tracker.core.secrets import secret_key
from tracker.errors import UnknownProviderError
from tracker.settings.providers import declared_provider
from tracker.web import problems
from tracker.web.auth import authenticate, caller
from tracker.web.login import viewer
from tracker.web.schemas import Health
from tracker.web.service import Service, service_of
from tracker.web.webhooks import Inbox

logger = logging.getLogger(__name__)

router = APIRouter()
ServiceOf = Annotated[Service, Depends(service_of)]


@router.get(
    "/healthz",
    response_model=Health,
    summary="Health",
    responses={503: {"description": "Unhealthy", "model": Health}},
)
def healthz(service: ServiceOf) -> JSONResponse:
    """200 while the service (and the daemon serving it, if one does) works, else 503; never
    asks for a token."""
    healthy, detail = service.probes.health()
    detail["status"] = "ok" if healthy else "unhealthy"
    return JSONResponse(detail, status_code=200 if healthy else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **problems.responses(401),
    },
)
async def metrics(request: Request, service: ServiceOf) -> Response:
    """The Prometheus text format; asks for a token unless ``--metrics-public``."""
    if not service.settings.metrics_public:
        await authenticate(request)
    body, content_type = await asyncio.to_thread(service.probes.metrics)
    return Response(body, media_type=content_type)


def webhook_inbox(service: Service) -> Inbox | None:
    """The receiver, when a signing secret is set (TRACKER_WEBHOOK_SECRET, a provider's)."""
    secrets = service.settings.webhook_secrets()
    if not secrets:
        return None
    database, clock = service.database, service.clock
    registers = service.settings.webhook_registers

    async def act(task_id: str, provider: str) -> bool:
        polling = await asyncio.to_thread(database.tasks.poll_now, task_id, clock.now())
        # Told once the database has it due: a poller woken before would find nothing to claim.
        service.made_due(task_id)
        if not polling and registers:
            # Registered under the provider whose secret signed it: its API made the task; not
            # under one the providers file does not declare (TRACKER_WEBHOOK_SECRET signs for
            # `default`, which the file may leave out): no daemon would poll it.
            try:
                declared_provider(provider, service.settings.providers)
            except UnknownProviderError as exc:
                logger.warning("webhook for %s: the task is not registered: %s", task_id, exc)
                return False
            result = await asyncio.to_thread(
                database.tasks.register, [NewTask(task_id, provider=provider)], clock.now()
            )
            return bool(result.added)
        return polling

    keys = {provider: secret_key(secret.reveal()) for provider, secret in secrets.items()}
    return Inbox(keys, act, lambda: clock.now().timestamp())


async def receive_webhook(request: Request) -> JSONResponse:
    inbox: Inbox | None = request.app.state.inbox
    if inbox is None:
        return problems.problem(
            request, 404, detail="No webhook receiver here: set TRACKER_WEBHOOK_SECRET."
        )
    answer = await inbox.receive(request.headers, await request.body())
    if answer.status >= 400:
        return problems.problem(request, answer.status, detail=str(answer.body["detail"]))
    return JSONResponse(answer.body, status_code=answer.status)


def add_webhook_routes(app: FastAPI) -> None:
    """``POST /webhooks``, and ``POST /`` where the receiver listened before it joined the app."""
    for path in ("/webhooks", "/"):
        app.add_api_route(
            path,
            receive_webhook,
            methods=["POST"],
            summary="Receive the video API's webhooks",
            description="Standard Webhooks, signed with TRACKER_WEBHOOK_SECRET: "
            "`video.completed` and `video.failed` make the task due at once.",
            responses={
                200: {"description": "Received"},
                **problems.responses(400, 401, 404, 413, 503),
            },
            include_in_schema=path == "/webhooks",
        )


def add_docs(app: FastAPI) -> None:
    """The OpenAPI document and its interactive documentation, asking for a token as every
    endpoint does but those of operators' tools (docs/http-api.md, Authentication): a program
    sends its token, a browser signs in (the documentation's page is a page of the dashboard's,
    sent to the login page first) and its session fetches the document."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(caller)])
    async def document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(viewer)])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="tracker API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon.png",
        )
