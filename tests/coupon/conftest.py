"""Fixtures of the coupon-service tests: one service per module on the session's store and
broker (rate limits high enough not to interfere unless a module lowers them), a tenant
per test, and HTTP clients calling as that tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from services.coupon.main import create_app
from services.coupon.settings import CouponSettings
from tests.coupon.support import Client, Service
from tests.support.servers import serve
from tests.support.settings import settings_for


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    """Settings a module changes; by default rate limits stay out of the way."""
    return {}


@pytest.fixture(scope="module")
async def service(infra: Any, overrides: dict[str, Any]) -> AsyncIterator[Service]:
    settings_overrides = {
        "customer_claims_per_minute": 100_000,
        "channel_claims_per_second": 100_000,
        **overrides,
    }
    settings = settings_for(CouponSettings, infra, uuid.uuid4().hex[:10], **settings_overrides)
    app = create_app(settings)
    async with serve(app) as url:
        yield Service(url, app, settings)


@pytest.fixture
def tenant(unique: str) -> str:
    return f"t{unique}"


@pytest.fixture
def client(service: Service, tenant: str) -> Client:
    default_tenant = tenant

    def open_client(
        headers: Mapping[str, str] | None = None, *, tenant: str | None = default_tenant
    ) -> httpx.AsyncClient:
        sent = {} if tenant is None else {"X-Tenant-Id": tenant}
        sent.update(headers or {})
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        return httpx.AsyncClient(base_url=service.url, headers=sent, timeout=60, limits=limits)

    return open_client


@pytest.fixture
async def api(client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling as the test's tenant, as an approver (approval needs the role)."""
    async with client({"X-Actor-Id": "ops-1", "X-Actor-Roles": "budget_approver"}) as opened:
        yield opened
