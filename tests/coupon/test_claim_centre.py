"""The claim centre (领券中心) over real HTTP, store and broker: what a customer can claim
now, why not for the rest, who sees what (new versus returning from paid-order events),
and random red packets decaying with the claim count on the claim path."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.coupon.domain.claim_centre import Listing
from tests.coupon.channels_support import pay_an_order
from tests.coupon.support import (
    Service,
    batch_spec,
    claim,
    draft_campaign,
    iso,
    now,
    ok,
    open_budget,
    running_batches,
    step,
)
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"consumer_groups": {"coupon.orders"}}  # paid orders: new versus returning


async def centre(api: httpx.AsyncClient, customer_id: str) -> dict[str, dict[str, Any]]:
    """The customer's claim centre by batch name, checked against the listing's model."""
    answer = await ok(api.get("/claim-centre", params={"customer_id": customer_id}))
    assert answer["customer_id"] == customer_id
    listings = [Listing.model_validate(x) for x in answer["batches"]]
    return {x.name: x.model_dump(mode="json") for x in listings}


async def test_the_claim_centre_lists_what_can_be_claimed_now_and_why_not_for_the_rest(
    api: httpx.AsyncClient,
) -> None:
    later = now() + timedelta(days=1)
    ids = await running_batches(
        api,
        batch_spec("open", per_customer_limit=2, claim_until=iso(now() + timedelta(days=2))),
        batch_spec("daily", per_customer_limit=3, per_customer_daily_limit=1),
        batch_spec("held"),
        batch_spec("tiny", stock=1),
        batch_spec("future", claim_from=iso(later), claim_until=iso(later + timedelta(days=1))),
        batch_spec("hidden", in_claim_centre=False),
        batch_spec("newbies", audience="new_customers"),
    )
    # A campaign approved but not started: its batch is not open.
    budget = await open_budget(api)
    waiting = await draft_campaign(api, budget["id"], batch_spec("not-started"))
    await step(api, waiting["id"], "submit")
    await step(api, waiting["id"], "approve")

    for batch in ("daily", "held"):
        await ok(claim(api, ids[batch], "cus_1"), 201)
    await ok(claim(api, ids["tiny"], "cus_other"), 201)

    listed = await centre(api, "cus_1")
    assert set(listed) == {"batch open", "batch daily", "batch held", "batch tiny", "batch newbies"}
    reasons = {name: x["reason"] for name, x in listed.items()}
    assert reasons == {
        "batch open": None,
        "batch newbies": None,
        "batch daily": "daily_limit_reached",
        "batch held": "limit_reached",
        "batch tiny": "sold_out",
    }
    assert listed["batch daily"]["held"] == 1 and listed["batch daily"]["held_today"] == 1
    assert listed["batch daily"]["detail"], "a refusal says why in words"
    order = list(listed)
    assert order[:2] == ["batch open", "batch newbies"], "claimable first, ending soonest first"
    assert listed["batch open"]["discount"] == {
        "kind": "threshold", "amount": 1_000, "threshold": 10_000, "pay_percent": None,
        "cap": None, "min_amount": None, "max_amount": None, "follow_up_batch": None,
    }  # fmt: skip

    # Claiming what the centre offered works, and the centre follows at once.
    await ok(claim(api, ids["open"], "cus_1"), 201)
    assert (await centre(api, "cus_1"))["batch open"]["claimable"] is True  # 1 of 2 held
    await ok(claim(api, ids["open"], "cus_1"), 201)
    assert (await centre(api, "cus_1"))["batch open"]["reason"] == "limit_reached"


async def test_a_returning_customer_is_not_shown_batches_for_new_customers(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await running_batches(api, batch_spec("newbies", audience="first_order"), batch_spec("all"))
    assert set(await centre(api, "cus_ret")) == {"batch newbies", "batch all"}
    await pay_an_order(service, tenant, "cus_ret")
    await eventually(
        lambda: centre(api, "cus_ret"), until=lambda c: set(c) == {"batch all"}, within=40
    )
    assert set(await centre(api, "cus_new")) == {"batch newbies", "batch all"}


async def test_a_batch_opening_or_ending_shows_within_the_cache_period(
    api: httpx.AsyncClient, service: Service
) -> None:
    assert await centre(api, "cus_1") == {}
    ids = await running_batches(api, batch_spec("fresh"))
    await eventually(lambda: centre(api, "cus_1"), until=lambda c: "batch fresh" in c, within=5)
    campaign_id = (await ok(api.get(f"/batches/{ids['fresh']}")))["batch"]["campaign_id"]
    await ok(api.post(f"/campaigns/{campaign_id}/end"))
    await eventually(lambda: centre(api, "cus_1"), until=lambda c: c == {}, within=5)


async def test_many_concurrent_visits_share_one_read_of_the_open_batches(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await running_batches(api, batch_spec("busy"))
    reads = 0
    claim_centre = service.runtime.state["claim_centre"]
    load = claim_centre.store.open_batches

    async def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return await load(*args)

    claim_centre.store.open_batches = counted
    claim_centre.batches.forget(tenant)
    try:
        answers = await asyncio.gather(*(centre(api, f"cus_{n}") for n in range(40)))
    finally:
        del claim_centre.store.open_batches
    assert all(set(a) == {"batch busy"} for a in answers)
    assert reads == 1


async def test_bad_input_is_refused_with_a_problem(api: httpx.AsyncClient) -> None:
    missing = await api.get("/claim-centre")
    assert missing.status_code == 422
    assert missing.headers["content-type"].startswith("application/problem+json")
    injected = await api.get("/claim-centre", params={"customer_id": '{"$gt": ""}'})
    assert injected.status_code == 422


async def test_a_random_red_packet_decays_with_each_claim_new_and_returning_apart(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    """min = max, so the draw is known: the n-th claim is worth the n-th factor of it."""
    packet = batch_spec(
        "packet",
        discount={"kind": "random", "min_amount": 1_000, "max_amount": 1_000, "threshold": 10_000},
        per_customer_limit=4,
        random_decay={
            "new_customers": [1, 0.5],
            "returning_customers": [0.4, 0.2, 0.15],
            "floor": 160,
        },
    )
    ids = await running_batches(api, packet)
    await pay_an_order(service, tenant, "cus_back")
    # The order reaches the read model through the broker: wait until it is counted.
    counted = service.runtime.state["claim_desk"].customers

    async def paid() -> int:
        return (await counted.paid_orders(tenant, ["cus_back"]))["cus_back"]

    await eventually(paid, until=lambda n: n == 1, within=40)

    async def values(customer: str) -> list[int]:
        return [
            (await ok(claim(api, ids["packet"], customer), 201))["face_value"] for _ in range(4)
        ]

    assert await values("cus_fresh") == [1_000, 500, 500, 500]
    assert await values("cus_back") == [400, 200, 160, 160], "the floor holds the last"
    grant = {"customer_id": "cus_fresh", "channel": "points_exchange", "reference": "x-1"}
    over = await api.post(f"/batches/{ids['packet']}/grants", json=grant)
    assert over.json()["code"] == "limit_reached"
