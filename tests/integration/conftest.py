"""Fixtures for tests that call one real customer service over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.customer.main import create_app
from services.customer.settings import CustomerSettings
from tests.support.servers import serve
from tests.support.settings import settings_for


@pytest.fixture(scope="module")
async def service_url(infra) -> AsyncIterator[str]:
    """One customer service for the module; each test works in a tenant of its own."""
    settings = settings_for(CustomerSettings, infra, uuid.uuid4().hex[:10])
    async with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
async def http(service_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service_url, timeout=30) as client:
        yield client


@pytest.fixture
def tenant(unique: str) -> str:
    return f"t{unique}"
