"""What the coupon-service tests share: the running service, and small factories that
read well in tests (a budget, a campaign with its batches, approved and running)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.coupon.settings import CouponSettings
from tests.support.running import RunningService

Client = Callable[..., httpx.AsyncClient]
Service = RunningService[CouponSettings]


def now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.isoformat()


async def ok(response_or_coro: Any, status: int = 200) -> Any:
    response = await response_or_coro
    assert response.status_code == status, response.text
    return response.json()


async def open_budget(api: httpx.AsyncClient, amount: int = 1_000_000, **fields: Any) -> dict:
    body = {
        "name": "Q4 membership subsidies",
        "owner_kind": "department",
        "owner": "growth",
        "amount": amount,
        "starts_at": iso(now() - timedelta(days=1)),
        "ends_at": iso(now() + timedelta(days=90)),
        **fields,
    }
    return await ok(api.post("/budgets", json=body), 201)


def batch_spec(key: str = "main", **fields: Any) -> dict[str, Any]:
    """A threshold coupon (满100减10) claimable now, valid 7 days, one per customer."""
    spec: dict[str, Any] = {
        "key": key,
        "name": f"batch {key}",
        "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
        "claim_from": iso(now() - timedelta(hours=1)),
        "claim_until": iso(now() + timedelta(days=7)),
        "validity": {"days_after_claim": 7},
        "stock": 100,
    }
    spec.update(fields)
    return spec


async def draft_campaign(
    api: httpx.AsyncClient, budget_id: str, *batches: dict[str, Any]
) -> dict[str, Any]:
    body = {"name": "Double 11", "budget_id": budget_id, "batches": list(batches) or [batch_spec()]}
    return await ok(api.post("/campaigns", json=body), 201)


async def step(api: httpx.AsyncClient, campaign_id: str, name: str, status: int = 200) -> dict:
    return await ok(api.post(f"/campaigns/{campaign_id}/{name}"), status)


async def running_batches(
    api: httpx.AsyncClient, *batches: dict[str, Any], budget: int = 100_000_000
) -> dict[str, str]:
    """A budget, a campaign with `batches`, submitted, approved and started: batch ids by key."""
    budget_id = (await open_budget(api, budget))["id"]
    campaign = await draft_campaign(api, budget_id, *batches)
    await step(api, campaign["id"], "submit")
    approved = await step(api, campaign["id"], "approve")
    await step(api, campaign["id"], "start")
    return approved["batch_ids"]


async def claim(
    api: httpx.AsyncClient, batch_id: str, customer_id: str, channel: str = "self_claim"
) -> httpx.Response:
    body = {"customer_id": customer_id, "channel": channel}
    return await api.post(f"/batches/{batch_id}/claims", json=body)


#: Idle connections are dropped before uvicorn's 5 s keep-alive ends, so a request never
#: goes out on a connection the server is closing at that moment (a ReadError).
KEEPALIVE_SECONDS = 2.0


class Crowd:
    """Many concurrent callers: `in_flight` requests at once, spread over several clients
    (one httpx pool with hundreds of connections spends its time scanning them)."""

    def __init__(self, base_url: str, headers: dict[str, str], *, in_flight: int = 200) -> None:
        per_client = 25
        self.clients = [
            httpx.AsyncClient(
                base_url=base_url,
                headers=headers,
                timeout=120,
                limits=httpx.Limits(
                    max_connections=per_client,
                    max_keepalive_connections=per_client,
                    keepalive_expiry=KEEPALIVE_SECONDS,
                ),
            )
            for _ in range(max(1, in_flight // per_client))
        ]
        self.gate = asyncio.Semaphore(in_flight)
        self.turn = 0

    async def post(self, path: str, json: Any) -> httpx.Response:
        async with self.gate:
            self.turn += 1
            return await self.clients[self.turn % len(self.clients)].post(path, json=json)

    async def close(self) -> None:
        for c in self.clients:
            await c.aclose()
