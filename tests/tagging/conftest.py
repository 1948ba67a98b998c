"""Fixtures of the tagging tests: the tagging service on a real socket (one per module) on
the session's store and broker, a tenant per test, and customers put straight into
tagging's read model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.tagging.main import create_app
from services.tagging.settings import TaggingSettings
from tests.support.servers import serve
from tests.support.settings import settings_for
from tests.tagging.support import Service


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    """Settings a module changes (e.g. the WeCom stand-in's address)."""
    return {"sync_poll_seconds": 0.2, "expiry_poll_seconds": 0.5}


@pytest.fixture(scope="module")
async def service(infra: Any, overrides: dict[str, Any]) -> AsyncIterator[Service]:
    settings = settings_for(TaggingSettings, infra, uuid.uuid4().hex[:10], **overrides)
    app = create_app(settings)
    async with serve(app) as url:
        app.state.runtime.state["jobs.poll_seconds"] = 0.2
        yield Service(url, app, settings)


@pytest.fixture
def tenant(unique: str) -> str:
    return f"t{unique}"


@pytest.fixture
async def api(service: Service, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-1"}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=60) as client:
        yield client
