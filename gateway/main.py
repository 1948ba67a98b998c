"""The gateway's app factory: `uvicorn --factory gateway.main:create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import health, openapi, proxy, public
from gateway.auth import Authenticator, default_authenticator
from gateway.openapi import ServiceDocuments
from gateway.partners import api as partners_api
from gateway.partners.authenticator import PartnerSignatureAuthenticator
from gateway.partners.registry import PartnerRegistry, SecretBox
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from servicekit.app import RequestContextMiddleware
from servicekit.errors import install_problem_handlers
from servicekit.logs import configure_logging
from servicekit.mongo import make_mongo_client
from servicekit.telemetry import configure_tracing, server_telemetry

SERVICE_NAME = "gateway"


def create_app(
    settings: GatewaySettings | None = None, *, authenticator: Authenticator | None = None
) -> FastAPI:
    """The gateway. Without an `authenticator` it uses `auth.default_authenticator`, which
    refuses to build in production. Partners' signed requests are checked in front of it."""
    settings = settings or GatewaySettings()
    mongo = make_mongo_client(settings.mongodb_uri, app_name=SERVICE_NAME)  # connects lazily
    partners = PartnerRegistry(
        mongo[settings.mongodb_database],
        SecretBox(settings.partner_sealing_key),
        nonce_ttl=int(settings.partner_signature_window_seconds * 2),
    )
    authenticator = PartnerSignatureAuthenticator(
        partners,
        others=authenticator or default_authenticator(settings),
        window_seconds=settings.partner_signature_window_seconds,
        path_prefixes=settings.partner_path_prefixes,
    )
    configure_logging(SERVICE_NAME, settings.log_level)
    configure_tracing(SERVICE_NAME, settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Upstream(settings) as upstream:
            app.state.upstream = upstream
            yield
        await mongo.close()

    app = FastAPI(
        title="Retail customer platform API",
        description="Every service's API behind one entry, under /api/v1/<domain>.",
        version="1.0.0",
        lifespan=lifespan,
        # The public document is the merged one at /api/v1/openapi.json (gateway.openapi).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=server_telemetry(),
    )
    app.state.settings = settings
    app.state.authenticator = authenticator
    app.state.partners = partners
    app.state.service_documents = ServiceDocuments(ttl=settings.openapi_cache_seconds)
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(openapi.router)
    app.include_router(partners_api.router)
    # Before the proxy: its catch-all route would otherwise ask these callers to log in.
    app.include_router(public.router)
    app.include_router(proxy.router)
    app.add_middleware(RequestContextMiddleware)
    return app
