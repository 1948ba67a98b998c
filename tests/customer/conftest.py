"""Fixtures of the customer-service tests: one service per module on the session's store
and broker, a tenant per test, and HTTP clients calling as that tenant.

A module sets who `api` calls as by overriding the `actor` fixture; `client(...)` opens
further clients with other actor headers or another tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.customer.main import create_app
from services.customer.settings import CustomerSettings
from tests.customer.support import Client, Service
from tests.support.servers import serve
from tests.support.settings import settings_for


@pytest.fixture(scope="module")
async def service(infra: Any) -> AsyncIterator[Service]:
    """The customer service of this module, with a database of its own."""
    settings = settings_for(CustomerSettings, infra, uuid.uuid4().hex[:10])
    app = create_app(settings)
    async with serve(app) as url:
        yield Service(url, app, settings)


@pytest.fixture
def db(service: Service) -> AsyncDatabase[Any]:
    return service.db


@pytest.fixture
def tenant(unique: str) -> str:
    return f"t{unique}"


@pytest.fixture
def client(service: Service, tenant: str) -> Client:
    """A factory of clients on the service, used as `async with client(ADMIN) as api:`."""
    default_tenant = tenant

    def open_client(
        headers: Mapping[str, str] | None = None, *, tenant: str | None = default_tenant
    ) -> httpx.AsyncClient:
        sent = {} if tenant is None else {"X-Tenant-Id": tenant}
        sent.update(headers or {})
        return httpx.AsyncClient(base_url=service.url, headers=sent, timeout=60)

    return open_client


@pytest.fixture
def actor() -> dict[str, str]:
    """The actor headers `api` sends: none, unless a module overrides this fixture."""
    return {}


@pytest.fixture
async def api(client: Client, actor: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling as the test's tenant and the module's actor."""
    async with client(actor) as opened:
        yield opened


@pytest.fixture
async def http(client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no default headers: each request says its tenant and actor."""
    async with client(tenant=None) as opened:
        yield opened
