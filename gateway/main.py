"""The gateway's app factory: `uvicorn --factory gateway.main:create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import health, openapi, public
from gateway.auth import Authenticator, default_authenticator
from gateway.openapi import ServiceDocuments
from gateway.partners import api as partners_api
from gateway.partners.authenticator import PartnerSignatureAuthenticator
from gateway.partners.registry import PartnerRegistry, SecretBox
from gateway.proxy import add_proxy_route
from gateway.settings import GatewaySettings
from gateway.upstream import Upstream
from servicekit.app import RequestContextMiddleware
from servicekit.errors import install_problem_handlers
from servicekit.heap import server_heap
from servicekit.logs import configure_logging
from servicekit.mongo import make_mongo_client
from servicekit.routing import add_routes
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
        # The heap is frozen before the pool opens: nothing in use is frozen with it.
        with server_heap():
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
    # Before the proxy: its catch-all route would otherwise take these paths.
    for router in (health.router, openapi.router, partners_api.router, public.router):
        add_routes(app, router)
    add_proxy_route(app)
    app.add_middleware(RequestContextMiddleware)
    return app
