"""Rate limits hold across replicas: two instances of the service share one store, and a
customer's claims or a batch's issuing rate are counted over both; refusals are 429 with
Retry-After."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.coupon.main import create_app
from services.coupon.store.rate_windows import RateWindowStore, sweep_expired
from tests.coupon.support import Service, batch_spec, claim, running_batches
from tests.support.servers import serve


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"customer_claims_per_minute": 3, "partner_requests_per_second": 4}


@pytest.fixture(scope="module")
async def second(service: Service) -> AsyncIterator[str]:
    """Another replica on the same store (its own consumer group, to skip a rebalance)."""
    settings = service.settings.model_copy(
        update={"kafka_group_prefix": service.settings.kafka_group_prefix + "b."}
    )
    async with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
async def other(second: str, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=second, headers={"X-Tenant-Id": tenant}) as opened:
        yield opened


async def test_a_customers_claims_are_limited_over_both_replicas(
    api: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    ids = await running_batches(api, batch_spec(per_customer_limit=10))
    answers = [await claim(c, ids["main"], "cus_fast") for c in (api, other, api, other)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited" and refused.json()["scope"] == "customer"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another customer is not affected.
    assert (await claim(other, ids["main"], "cus_slow")).status_code == 201


async def test_a_batch_issuing_rate_holds_over_both_replicas(
    api: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    ids = await running_batches(api, batch_spec(stock=100, issue_rate_per_second=5))
    clients = [api, other] * 15
    answers = await asyncio.gather(
        *(claim(c, ids["main"], f"cus_{n}") for n, c in enumerate(clients))
    )
    won = [r.json() for r in answers if r.status_code == 201]
    limited = [r for r in answers if r.status_code == 429]
    assert won and limited and len(won) + len(limited) == 30
    assert all(r.json()["scope"] == "batch" and "Retry-After" in r.headers for r in limited)
    per_second = Counter(
        datetime.fromisoformat(c["claimed_at"]).replace(microsecond=0) for c in won
    )
    # Claimed within the window that admitted them (a round may finish in the next second).
    assert len(won) <= 5 * 2 and max(per_second.values()) <= 10


async def test_a_partner_clients_requests_are_limited(
    client: Any, other: httpx.AsyncClient, tenant: str, api: httpx.AsyncClient
) -> None:
    ids = await running_batches(api, batch_spec(stock=100, per_customer_limit=1))
    partner = {"X-Actor-Id": "partner-didi", "X-Actor-Kind": "partner"}
    async with client(partner) as as_partner:
        bodies = [
            {"customer_id": f"cus_{n}", "channel": "partner_exchange", "reference": f"p-{n}"}
            for n in range(12)
        ]
        answers = await asyncio.gather(
            *(as_partner.post(f"/batches/{ids['main']}/grants", json=b) for b in bodies)
        )
    statuses = Counter(r.status_code for r in answers)
    assert statuses[429] >= 4 and statuses[201] >= 1
    assert statuses[201] <= 8  # at most 4 per one-second window, two windows at most


async def test_windows_past_their_expiry_are_swept(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(api, batch_spec())
    assert (await claim(api, ids["main"], "cus_swept")).status_code == 201
    windows = service.db["rate_windows"]
    mine = {"_id": {"$regex": f"^{tenant}:"}}
    assert await windows.count_documents(mine) >= 2
    await sweep_expired(RateWindowStore(service.db), datetime.now(UTC))
    assert await windows.count_documents(mine) >= 2  # current windows stay
    later = datetime.now(UTC) + timedelta(minutes=5)
    await sweep_expired(RateWindowStore(service.db), later)
    assert await windows.count_documents(mine) == 0
