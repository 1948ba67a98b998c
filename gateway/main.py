"""The gateway's app factory: `uvicorn --factory gateway.main:create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import health, openapi, proxy
from gateway.auth import Authenticator, default_authenticator
from gateway.openapi import ServiceDocuments
from gateway.settings import GatewaySettings
from gateway.upstream import make_upstream_client
from servicekit.app import RequestContextMiddleware
from servicekit.errors import install_problem_handlers
from servicekit.logs import configure_logging
from servicekit.telemetry import configure_tracing, instrument_app

SERVICE_NAME = "gateway"


def create_app(
    settings: GatewaySettings | None = None, *, authenticator: Authenticator | None = None
) -> FastAPI:
    """The gateway. Without an `authenticator` it uses `auth.default_authenticator`, which
    refuses to build in production."""
    settings = settings or GatewaySettings()
    authenticator = authenticator or default_authenticator(settings)
    configure_logging(SERVICE_NAME, settings.log_level)
    configure_tracing(SERVICE_NAME, settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with make_upstream_client(settings) as client:
            app.state.upstream_client = client
            yield

    app = FastAPI(
        title="Retail customer platform API",
        description="Every service's API behind one entry, under /api/v1/<domain>.",
        version="1.0.0",
        lifespan=lifespan,
        # The public document is the merged one at /api/v1/openapi.json (gateway.openapi).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.authenticator = authenticator
    app.state.service_documents = ServiceDocuments(ttl=settings.openapi_cache_seconds)
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(openapi.router)
    app.include_router(proxy.router)
    app.add_middleware(RequestContextMiddleware)
    instrument_app(app)
    return app
