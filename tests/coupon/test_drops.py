"""On-site drops (天降红包) over real HTTP, store and broker: rules validated and kept, a
check drops by trigger, page, audience and window, caps hold under concurrent checks for
one customer, a retried occasion never drops twice, and probability is honoured."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.coupon.support import Crowd, Service, batch_spec, iso, now, ok, running_batches


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    # No events needed: skip the group joins. Checks count as the customer's claims.
    return {"consumer_groups": set(), "customer_claims_per_minute": 40}


def rule(batch_id: str, **fields: Any) -> dict[str, Any]:
    """A login rule that always drops, once a day, active now."""
    body: dict[str, Any] = {
        "name": "login packet",
        "trigger": "login",
        "batch_id": batch_id,
        "probability_percent": 100,
        "max_per_day": 1,
        "active_from": iso(now() - timedelta(hours=1)),
        "active_until": iso(now() + timedelta(days=3)),
    }
    body.update(fields)
    return body


async def check(
    api: httpx.AsyncClient, customer_id: str, trigger: str = "login", **fields: Any
) -> list[dict[str, Any]]:
    body = {"customer_id": customer_id, "trigger": trigger, **fields}
    return (await ok(api.post("/drops/check", json=body)))["dropped"]


async def test_a_rule_is_validated_kept_replaced_and_deleted(api: httpx.AsyncClient) -> None:
    ids = await running_batches(api, batch_spec())
    created = await ok(api.post("/drop-rules", json=rule(ids["main"])), 201)
    assert created["id"].startswith("drp_") and created["created_by"] == "ops-1"
    assert await ok(api.get(f"/drop-rules/{created['id']}")) == created
    changed = rule(ids["main"], trigger="page_open", page="home", probability_percent=12.5)
    replaced = await ok(api.put(f"/drop-rules/{created['id']}", json=changed))
    assert (replaced["page"], replaced["created_at"]) == ("home", created["created_at"])
    listed = await ok(api.get("/drop-rules"))
    assert [r["id"] for r in listed["items"]] == [created["id"]]
    assert (await api.delete(f"/drop-rules/{created['id']}")).status_code == 204
    gone = await api.get(f"/drop-rules/{created['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "drop_rule_not_found")

    bad = {
        "page on a login": rule(ids["main"], page="home"),
        "probability over 100": rule(ids["main"], probability_percent=100.5),
        "window backwards": rule(ids["main"], active_until=iso(now() - timedelta(days=1))),
        "daily above overall": rule(ids["main"], max_per_day=3, max_overall=2),
        "naive time": rule(ids["main"], active_from="2026-01-01T00:00:00"),
        "unknown field": rule(ids["main"], segment="vip"),
        "operator injection": rule({"$gt": ""}),
        "unknown trigger": rule(ids["main"], trigger="logout"),
    }
    for case, body in bad.items():
        answer = await api.post("/drop-rules", json=body)
        assert answer.status_code == 422, case
    unknown = await api.post("/drop-rules", json=rule("bat_nope"))
    assert (unknown.status_code, unknown.json()["code"]) == (422, "batch_not_found")
    assert (await ok(api.get("/drop-rules")))["items"] == [], "nothing was written"


async def test_a_check_drops_by_trigger_page_audience_and_window(api: httpx.AsyncClient) -> None:
    later = now() + timedelta(days=1)
    ids = await running_batches(api, batch_spec(per_customer_limit=10))
    main = ids["main"]
    for body in (
        rule(main, name="home", trigger="page_open", page="home"),
        rule(main, name="any page", trigger="page_open", probability_percent=0),
        rule(main, name="returning", audience="returning_customers"),
        rule(main, name="tomorrow", active_from=iso(later), active_until=iso(later + timedelta(1))),
    ):
        await ok(api.post("/drop-rules", json=body), 201)
    assert await check(api, "cus_1") == [], "returning only, tomorrow only"
    assert await check(api, "cus_1", "page_open", page="cart") == []
    [drop] = await check(api, "cus_1", "page_open", page="home")
    coupon = drop["coupon"]
    assert drop["new"] is True and coupon["channel"] == "onsite_drop"
    assert coupon["batch_id"] == main and coupon["state"] == "available"
    wallet = await ok(api.get("/customers/cus_1/coupons"))
    assert [c["id"] for c in wallet["items"]] == [coupon["id"]]
    assert await check(api, "cus_1", "page_open", page="home") == [], "once a day"
    new_only = await ok(api.post("/drop-rules", json=rule(main, audience="new_customers")), 201)
    [welcome] = await check(api, "cus_1")
    assert welcome["rule_id"] == new_only["id"]

    bad = await api.post(
        "/drops/check", json={"customer_id": "cus_1", "trigger": "login", "page": "x"}
    )
    assert bad.status_code == 422


async def test_concurrent_checks_for_one_customer_never_exceed_the_caps(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(api, batch_spec(per_customer_limit=10))
    await ok(api.post("/drop-rules", json=rule(ids["main"], max_per_day=2, max_overall=5)), 201)
    crowd = Crowd(service.url, {"X-Tenant-Id": tenant}, in_flight=30)
    try:
        answers = await asyncio.gather(
            *(
                crowd.post("/drops/check", {"customer_id": "cus_rush", "trigger": "login"})
                for _ in range(30)
            )
        )
    finally:
        await crowd.close()
    assert {a.status_code for a in answers} == {200}
    dropped = [d for a in answers for d in a.json()["dropped"]]
    stored = await service.db["coupons"].find({"batch_id": ids["main"]}).to_list()
    assert len(stored) == 2, "at most the rule's daily cap"
    assert {d["coupon"]["id"] for d in dropped} == {d["_id"] for d in stored}
    assert sum(d["new"] for d in dropped) == 2, "each coupon answered as new once"
    assert await check(api, "cus_rush") == []


async def test_a_retried_occasion_answers_the_same_drop_and_never_draws_again(
    api: httpx.AsyncClient, service: Service
) -> None:
    ids = await running_batches(api, batch_spec(per_customer_limit=10))
    await ok(api.post("/drop-rules", json=rule(ids["main"], max_per_day=3)), 201)
    [first] = await check(api, "cus_2", occasion="session-1")
    retries = await asyncio.gather(*(check(api, "cus_2", occasion="session-1") for _ in range(5)))
    assert all([d["coupon"]["id"] for d in r] == [first["coupon"]["id"]] for r in retries)
    assert not any(d["new"] for r in retries for d in r)
    [second] = await check(api, "cus_2", occasion="session-2")
    assert second["coupon"]["id"] != first["coupon"]["id"] and second["new"]
    held = await service.db["coupons"].count_documents({"customer_id": "cus_2"})
    assert held == 2


async def test_drops_follow_the_probability_and_the_batchs_stock(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(api, batch_spec("half"), batch_spec("tiny", stock=3))
    await ok(api.post("/drop-rules", json=rule(ids["half"], probability_percent=50)), 201)
    await ok(api.post("/drop-rules", json=rule(ids["tiny"], trigger="page_open", page="home")), 201)
    crowd = Crowd(service.url, {"X-Tenant-Id": tenant}, in_flight=50)
    try:
        logins = await asyncio.gather(
            *(
                crowd.post("/drops/check", {"customer_id": f"c{n}", "trigger": "login"})
                for n in range(200)
            )
        )
        pages = await asyncio.gather(
            *(
                crowd.post(
                    "/drops/check", {"customer_id": f"c{n}", "trigger": "page_open", "page": "home"}
                )
                for n in range(10)
            )
        )
    finally:
        await crowd.close()
    won = sum(len(a.json()["dropped"]) for a in logins)
    # Binomial(200, 1/2) falls outside [60, 140] with probability below 1e-8.
    assert 60 <= won <= 140, won
    assert sum(len(a.json()["dropped"]) for a in pages) == 3, "no drop beyond the stock"
    by_batch = Counter(
        d["batch_id"]
        for d in await service.db["coupons"].find({"channel": "onsite_drop"}).to_list()
    )
    assert by_batch[ids["tiny"]] == 3 and by_batch[ids["half"]] == won


async def test_a_paused_rule_stops_dropping_at_once(api: httpx.AsyncClient) -> None:
    ids = await running_batches(api, batch_spec())
    created = await ok(api.post("/drop-rules", json=rule(ids["main"])), 201)
    await ok(api.put(f"/drop-rules/{created['id']}", json=rule(ids["main"], enabled=False)))
    assert await check(api, "cus_3") == []


async def test_checks_that_may_draw_count_in_the_customers_claim_rate(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    """90 checks of one customer in a moment, 40 a minute allowed: even split over two
    minute windows, at least 10 are refused with 429 and Retry-After."""
    ids = await running_batches(api, batch_spec())
    await ok(api.post("/drop-rules", json=rule(ids["main"], probability_percent=0)), 201)
    crowd = Crowd(service.url, {"X-Tenant-Id": tenant}, in_flight=30)
    body = {"customer_id": "cus_loop", "trigger": "login"}
    try:
        answers = await asyncio.gather(*(crowd.post("/drops/check", body) for _ in range(90)))
    finally:
        await crowd.close()
    limited = [a for a in answers if a.status_code == 429]
    assert len(limited) >= 10 and {a.status_code for a in answers} == {200, 429}
    assert limited[0].json()["code"] == "rate_limited"
    assert int(limited[0].headers["Retry-After"]) >= 1
    nothing = await api.post(
        "/drops/check", json={"customer_id": "cus_loop", "trigger": "page_open"}
    )
    assert nothing.status_code == 200, "a check no rule matches costs nothing, nor counts"


async def test_a_batch_meant_only_for_drops_drops_but_cannot_be_claimed(
    api: httpx.AsyncClient,
) -> None:
    """Its claim window is over: a claim is refused, a drop (a grant) is not."""
    closed = {"claim_from": iso(now() - timedelta(days=2)), "claim_until": iso(now())}
    ids = await running_batches(api, batch_spec("drops-only", **closed, in_claim_centre=False))
    await ok(api.post("/drop-rules", json=rule(ids["drops-only"])), 201)
    claimed = await api.post(f"/batches/{ids['drops-only']}/claims", json={"customer_id": "cus_4"})
    assert (claimed.status_code, claimed.json()["code"]) == (409, "claim_closed")
    [drop] = await check(api, "cus_4")
    assert drop["coupon"]["batch_id"] == ids["drops-only"]
    centre = await ok(api.get("/claim-centre", params={"customer_id": "cus_5"}))
    assert centre["batches"] == []
