"""Points for a coupon against the real coupon service (its own module: it starts that
service, on the session's store and broker): a running batch grants the coupon and the
same request answers the same one; a sold-out batch refuses and the points come back; an
unknown batch is a refusal too, never a debit left hanging."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.coupon.main import create_app as create_coupon_app
from services.coupon.settings import CouponSettings
from services.loyalty.clients.coupons import CouponClient
from services.loyalty.service.exchanges import ExchangeService
from tests.coupon.support import batch_spec, running_batches
from tests.loyalty.support import Service, customer, key, points, post
from tests.support.servers import serve
from tests.support.settings import settings_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def coupon_url(infra: Any) -> AsyncIterator[str]:
    settings = settings_for(CouponSettings, infra, uuid.uuid4().hex[:10])
    async with serve(create_coupon_app(settings)) as url:
        yield url


@pytest.fixture
async def exchanges(service: Service, coupon_url: str) -> AsyncIterator[ExchangeService]:
    client = CouponClient(coupon_url, timeout_seconds=10)
    yield ExchangeService(service.runtime.uow, client)
    await client.close()


@pytest.fixture
async def coupon_api(coupon_url: str, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-1", "X-Actor-Roles": "budget_approver"}
    async with httpx.AsyncClient(base_url=coupon_url, headers=headers, timeout=60) as client:
        yield client


async def funded(api: httpx.AsyncClient, amount: int = 1_000) -> str:
    cid = customer()
    body = {"points": amount, "reason": "welcome"}
    assert (await post(api, f"/customers/{cid}/points/adjustments", body)).status_code == 201
    return cid


async def test_the_real_coupon_service_grants_refuses_and_the_points_follow(
    api: httpx.AsyncClient, coupon_api: httpx.AsyncClient, exchanges: ExchangeService, tenant: str
) -> None:
    batches = await running_batches(coupon_api, batch_spec("one", stock=1))
    batch_id = batches["one"]
    first, second = await funded(api), await funded(api)

    same = key()
    granted = await exchanges.exchange(tenant, first, batch_id=batch_id, points=300, key=same)
    assert granted.state == "granted" and granted.coupon_id
    again = await exchanges.exchange(tenant, first, batch_id=batch_id, points=300, key=same)
    assert again.coupon_id == granted.coupon_id
    assert (await points(api, first))["balance"] == 700

    sold_out = await exchanges.exchange(tenant, second, batch_id=batch_id, points=300, key=key())
    assert sold_out.state == "refused" and sold_out.refusal_code
    assert (await points(api, second))["balance"] == 1_000

    unknown = await exchanges.exchange(tenant, second, batch_id="no-such", points=100, key=key())
    assert unknown.state == "refused"
    assert (await points(api, second))["balance"] == 1_000
