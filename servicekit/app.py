"""The app factory every service uses: lifespan with the runtime, health and readiness,
request ids, tenant context, idempotency keys, problem+json errors, telemetry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.consumer import Subscription
from servicekit.context import current_request_id, current_tenant
from servicekit.errors import install_problem_handlers
from servicekit.headers import REQUEST_ID_HEADER
from servicekit.heap import server_heap
from servicekit.idempotency import IdempotencyMiddleware
from servicekit.limits import BodyLimitMiddleware
from servicekit.logs import configure_logging
from servicekit.mongo import Index
from servicekit.routing import add_routes
from servicekit.runtime import Runtime, Worker
from servicekit.settings import ServiceSettings
from servicekit.telemetry import configure_tracing, server_telemetry


class RequestContextMiddleware:
    """Takes or makes the request id, echoes it, and scopes tenant and id to the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        request_id = headers.get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        request_id = request_id[:128] or uuid.uuid4().hex
        rid_token = current_request_id.set(request_id)
        tenant_token = current_tenant.set(None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"].append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_tenant.reset(tenant_token)
            current_request_id.reset(rid_token)


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the store and broker answer, workers run")
    async def readyz(request: Request) -> JSONResponse:
        state = await request.app.state.runtime.readiness()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    return router


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    routers: list[APIRouter],
    indexes: list[Index],
    subscriptions: list[Subscription] | None = None,
    workers: list[Worker] | None = None,
    state: dict[str, Any] | None = None,
    body_limits: dict[str, int] | None = None,
) -> FastAPI:
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(settings.service_name, settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with server_heap():
            app.state.runtime = await Runtime.start(
                settings,
                indexes=indexes,
                subscriptions=subscriptions or [],
                workers=workers,
                state=state,
            )
            try:
                yield
            finally:
                await app.state.runtime.stop()

    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        telemetry=server_telemetry(),
    )
    app.state.settings = settings
    install_problem_handlers(app)
    for router in [health_router(), *routers]:
        add_routes(app, router)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware, paths=body_limits)
    app.add_middleware(RequestContextMiddleware)
    return app
