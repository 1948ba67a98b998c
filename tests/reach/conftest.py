"""Fixtures of the reach tests: the reach service on a real socket (one per module) on the
session's store and broker, a tenant per test, and a client calling as that tenant. A module
changes settings by overriding `overrides` (e.g. to point a channel at a local peer)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.reach.main import create_app
from services.reach.settings import ReachSettings
from tests.reach.support import Service
from tests.support.servers import serve
from tests.support.settings import settings_for


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
async def service(infra: Any, overrides: dict[str, Any]) -> AsyncIterator[Service]:
    settings = settings_for(
        ReachSettings, infra, uuid.uuid4().hex[:10], **{"dispatch_poll_seconds": 0.2, **overrides}
    )
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
