"""Claiming under load and granting: never more coupons than stock, never a customer over
their limit, no success answered and lost; every refusal with its reason."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import httpx

from contracts import Topic
from tests.coupon.support import (
    Crowd,
    Service,
    batch_spec,
    claim,
    iso,
    now,
    ok,
    running_batches,
)
from tests.support.events import published
from tests.support.waiting import eventually


async def test_a_claim_puts_a_coupon_in_the_wallet_with_its_own_validity(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(api, batch_spec(validity={"days_after_claim": 3}))
    coupon = await ok(claim(api, ids["main"], "cus_1"), 201)
    assert coupon["state"] == "available" and coupon["customer_id"] == "cus_1"
    assert coupon["face_value"] == 1_000 and coupon["channel"] == "self_claim"
    wallet = await ok(api.get("/customers/cus_1/coupons", params={"state": "available"}))
    assert [c["id"] for c in wallet["items"]] == [coupon["id"]]
    span = datetime.fromisoformat(coupon["valid_until"]) - datetime.fromisoformat(
        coupon["valid_from"]
    )
    assert span == timedelta(days=3)

    async def claimed() -> list:
        envelopes = await published(service.bootstrap, tenant=tenant, topic=Topic.COUPON)
        return [e for e in envelopes if e.type == "coupon.claimed.v1"]

    events = await eventually(claimed)
    assert events[0].data["coupon_id"] == coupon["id"]


async def test_every_claim_refusal_says_why(api: httpx.AsyncClient) -> None:
    later = now() + timedelta(days=1)
    ids = await running_batches(
        api,
        batch_spec("one", per_customer_limit=2, per_customer_daily_limit=1),
        batch_spec("future", claim_from=iso(later), claim_until=iso(later + timedelta(days=1))),
        batch_spec("tiny", stock=1),
        batch_spec("newbies", audience="new_customers"),
    )
    assert (await claim(api, ids["one"], "cus_1")).status_code == 201
    daily = await claim(api, ids["one"], "cus_1")
    assert (daily.status_code, daily.json()["code"]) == (409, "daily_limit_reached")
    not_open = await claim(api, ids["future"], "cus_1")
    assert not_open.json()["code"] == "claim_not_open"
    assert (await claim(api, ids["tiny"], "cus_1")).status_code == 201
    sold_out = await claim(api, ids["tiny"], "cus_2")
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "sold_out")
    assert "no coupons left" in sold_out.json()["detail"]
    missing = await claim(api, "bat_missing", "cus_1")
    assert missing.status_code == 404
    bad = await api.post(f"/batches/{ids['one']}/claims", json={"customer_id": {"$ne": 1}})
    assert bad.status_code == 422


async def test_a_per_customer_limit_above_one_allows_that_many(api: httpx.AsyncClient) -> None:
    ids = await running_batches(api, batch_spec(per_customer_limit=3))
    answers = [await claim(api, ids["main"], "cus_9") for _ in range(4)]
    assert [r.status_code for r in answers] == [201, 201, 201, 409]
    assert answers[-1].json()["code"] == "limit_reached"


async def test_claims_stop_when_the_campaign_ends(api: httpx.AsyncClient) -> None:
    ids = await running_batches(api, batch_spec())
    campaign_id = (await ok(api.get(f"/batches/{ids['main']}")))["batch"]["campaign_id"]
    await ok(api.post(f"/campaigns/{campaign_id}/end"))

    async def refused() -> str:
        return (await claim(api, ids["main"], "cus_late")).json()["code"]

    assert await eventually(refused, until=lambda c: c == "batch_not_active", within=5)


async def test_a_flash_sale_never_oversells_and_loses_no_success(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    """600 concurrent claims by 300 customers (each claims twice) for 200 coupons limited
    to one per customer: exactly 200 succeed, each customer at most once, every 201 is in
    the store, and the rest are sold_out or limit_reached."""
    ids = await running_batches(api, batch_spec(stock=200, per_customer_limit=1))
    customers = [f"cus_{n:04d}" for n in range(300)] * 2
    crowd = Crowd(service.url, {"X-Tenant-Id": tenant})
    path = f"/batches/{ids['main']}/claims"
    try:
        answers = await asyncio.gather(
            *(crowd.post(path, {"customer_id": c, "channel": "app"}) for c in customers)
        )
    finally:
        await crowd.close()
    won = [r.json() for r in answers if r.status_code == 201]
    codes = Counter(r.json()["code"] for r in answers if r.status_code != 201)
    assert len(won) == 200
    assert set(codes) <= {"sold_out", "limit_reached"}
    assert max(Counter(c["customer_id"] for c in won).values()) == 1
    stored = await service.db["coupons"].find({"batch_id": ids["main"]}).to_list()
    assert {d["_id"] for d in stored} == {c["id"] for c in won}
    batch = await ok(api.get(f"/batches/{ids['main']}"))
    assert batch["coupons"] == {"available": 200}
    assert batch["batch"]["unleased"] == 0


async def test_sold_out_refusals_do_not_touch_the_store(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(api, batch_spec(stock=5))
    await asyncio.gather(*(claim(api, ids["main"], f"cus_{n}") for n in range(6)))
    desk = service.runtime.state["claim_desk"]
    issuer = desk.issuer(tenant, ids["main"])
    rounds = issuer.batcher.rounds
    answers = await asyncio.gather(*(claim(api, ids["main"], f"late_{n}") for n in range(50)))
    assert {r.json()["code"] for r in answers} == {"sold_out"}
    assert issuer.batcher.rounds == rounds, "a sold-out refusal went to the store"


async def test_a_grant_is_idempotent_by_reference_and_respects_stock_and_limits(
    api: httpx.AsyncClient,
) -> None:
    """The loyalty service's points exchange: no claim window, stock and limits apply."""
    later = now() + timedelta(days=2)
    ids = await running_batches(
        api,
        batch_spec(stock=2, claim_from=iso(later), claim_until=iso(later + timedelta(days=1))),
    )
    grants = f"/batches/{ids['main']}/grants"
    body = {"customer_id": "cus_1", "channel": "points_exchange", "reference": "exch-1"}
    first, again = await asyncio.gather(api.post(grants, json=body), api.post(grants, json=body))
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    coupon = first.json()
    assert coupon["channel"] == "points_exchange" and coupon["batch_id"] == ids["main"]
    assert {"coupon_id", "valid_from", "valid_until", "state", "customer_id"} <= set(coupon)
    assert coupon["coupon_id"] == coupon["id"] and coupon["state"] == "available"
    limit = await api.post(grants, json={**body, "reference": "exch-2"})
    assert (limit.status_code, limit.json()["code"]) == (409, "limit_reached")
    await ok(api.post(grants, json={**body, "customer_id": "cus_2", "reference": "exch-3"}), 201)
    sold_out = await api.post(grants, json={**body, "customer_id": "cus_3", "reference": "x-4"})
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "sold_out")
    replay = await api.post(grants, json=body)
    assert replay.status_code == 201 and replay.json()["id"] == coupon["id"]
