"""Run the gateway on a real socket in front of stand-in services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from gateway.auth import Authenticator
from gateway.main import create_app
from gateway.settings import DOMAINS, GatewaySettings
from tests.support.servers import free_port, serve

TENANT = {"X-Tenant-Id": "brand-a"}


def nowhere() -> str:
    """The address of a service that is not running."""
    return f"http://127.0.0.1:{free_port()}"


def gateway_settings(**overrides: Any) -> GatewaySettings:
    """Test settings: every service unreachable unless named, quick retries."""
    values: dict[str, Any] = {f"{domain}_url": nowhere() for domain in DOMAINS}
    values |= {"environment": "test", "upstream_retry_backoff": 0.01}
    return GatewaySettings(**(values | overrides))


@asynccontextmanager
async def running_gateway(
    authenticator: Authenticator | None = None, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on a loopback socket, and a client for it."""
    app = create_app(gateway_settings(**overrides), authenticator=authenticator)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, trust_env=False) as client:
        yield client
