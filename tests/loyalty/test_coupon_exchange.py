"""Points for a coupon: the saga against a stand-in coupon service on a real socket that
implements the agreed grant contract. Granted: the points stay spent; refused (409/422):
the debit is restored by a linked entry; a timeout is retried with the same reference and
gets the same single coupon; an unreachable coupon service leaves the exchange debited
until the recovery sweep gets an answer; the same request key never spends twice."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from services.loyalty.clients.coupons import CouponClient
from services.loyalty.service.exchanges import ExchangeService
from tests.loyalty.coupon_stand_in import CouponStandIn
from tests.loyalty.support import Service, customer, entries, key, points, post
from tests.support.servers import free_port

pytestmark = pytest.mark.integration


async def funded(api: httpx.AsyncClient, amount: int = 1_000) -> str:
    cid = customer()
    body = {"points": amount, "reason": "welcome"}
    response = await post(api, f"/customers/{cid}/points/adjustments", body)
    assert response.status_code == 201, response.text
    return cid


async def exchange(
    api: httpx.AsyncClient, cid: str, batch: str, amount: int = 300, **extra: str
) -> httpx.Response:
    path = f"/customers/{cid}/points/coupon-exchanges"
    return await post(api, path, {"batch_id": batch, "points": amount}, **extra)


async def test_a_granted_coupon_keeps_the_points_spent_and_a_repeat_spends_nothing(
    api: httpx.AsyncClient, coupons: CouponStandIn, tenant: str
) -> None:
    cid = await funded(api)
    same = key()
    first = await exchange(api, cid, "B-1", idempotency_key=same)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["state"] == "granted" and body["coupon_id"].startswith("cpn_")
    call = coupons.calls[-1]
    assert (call["reference"], call["channel"], call["customer_id"]) == (
        body["exchange_id"],
        "points_exchange",
        cid,
    )
    again = await exchange(api, cid, "B-1", idempotency_key=same)
    assert again.json()["coupon_id"] == body["coupon_id"]
    assert (await points(api, cid))["balance"] == 700
    assert len(coupons.coupons_for(tenant)) == 1
    path = f"/customers/{cid}/points/coupon-exchanges/{body['exchange_id']}"
    assert (await api.get(path)).json()["coupon_id"] == body["coupon_id"]
    assert (await api.get(path.replace(cid, customer()))).status_code == 404


@pytest.mark.parametrize("batch", ["sold-out-1", "closed-1"])
async def test_a_refusal_restores_the_points_with_a_linked_entry(
    api: httpx.AsyncClient, batch: str
) -> None:
    cid = await funded(api)
    refused = await exchange(api, cid, batch)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "coupon_refused"
    assert problem["coupon_code"] in {"batch_out_of_stock", "batch_not_active"}
    assert (await points(api, cid))["balance"] == 1_000
    restored, spent = (await entries(api, cid))[:2]
    assert (spent["kind"], spent["points"]) == ("spent", -300)
    assert (restored["kind"], restored["points"]) == ("restored", 300)
    assert restored["linked_entry_id"] == spent["entry_id"]


async def test_a_timeout_is_retried_with_the_same_reference_for_one_coupon(
    api: httpx.AsyncClient, coupons: CouponStandIn, tenant: str
) -> None:
    cid = await funded(api)
    response = await exchange(api, cid, "slow-1")
    assert response.status_code == 201, response.text
    references = [c["reference"] for c in coupons.calls if c["customer_id"] == cid]
    assert len(references) == 2 and len(set(references)) == 1
    assert len([c for c in coupons.coupons_for(tenant) if c["customer_id"] == cid]) == 1


async def test_an_unreachable_coupon_service_leaves_the_exchange_for_the_sweep(
    api: httpx.AsyncClient, service: Service, coupons: CouponStandIn, tenant: str
) -> None:
    cid = await funded(api)
    down = CouponClient(f"http://127.0.0.1:{free_port()}", timeout_seconds=1, attempts=2)
    try:
        waiting = await ExchangeService(service.runtime.uow, down).exchange(
            tenant, cid, batch_id="B-2", points=400, key=key()
        )
    finally:
        await down.close()
    assert waiting.state == "debited" and waiting.attempts == 1
    assert (await points(api, cid))["balance"] == 600

    sweep = ExchangeService(service.runtime.uow, service.runtime.state["coupons"])
    assert await sweep.resume_unsettled(waiting.updated_at) == 0  # not due yet
    await sweep.resume_unsettled(waiting.updated_at + timedelta(minutes=1))
    settled = await sweep.get(tenant, waiting.key)
    assert settled.state == "granted" and settled.coupon_id
    assert (await points(api, cid))["balance"] == 600


async def test_an_exchange_beyond_the_balance_debits_nothing_and_calls_no_one(
    api: httpx.AsyncClient, coupons: CouponStandIn
) -> None:
    cid = await funded(api, 100)
    calls = len(coupons.calls)
    response = await exchange(api, cid, "B-1", 101)
    assert response.status_code == 422 and response.json()["code"] == "insufficient_points"
    assert len(coupons.calls) == calls
    assert (await points(api, cid))["balance"] == 100
