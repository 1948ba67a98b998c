"""Monitoring (效果监控): per budget, campaign and batch, coupons issued and used, subsidy
spent, and the GMV of the paid orders that used them (from the customer service's order
events, through the real broker), net of refunds; target GMV and what remains of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contracts.customer import OrderRefunded
from tests.coupon.orders import lock, paid, publish
from tests.coupon.support import (
    Service,
    batch_spec,
    claim,
    draft_campaign,
    iso,
    now,
    ok,
    open_budget,
    step,
)
from tests.support.waiting import eventually


async def _campaign(api: httpx.AsyncClient, budget_id: str) -> dict[str, Any]:
    campaign = await draft_campaign(
        api, budget_id, batch_spec("ten", stock=10), batch_spec("five", stock=20,
        discount={"kind": "threshold", "amount": 500, "threshold": 5_000})
    )  # fmt: skip
    for name in ("submit", "approve", "start"):
        campaign = await step(api, campaign["id"], name)
    return campaign


async def test_stats_add_up_issued_used_subsidy_and_gmv_per_budget_campaign_and_batch(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    budget = await open_budget(api, 1_000_000, target_gmv=100_000)
    campaign = await _campaign(api, budget["id"])
    ten, five = campaign["batch_ids"]["ten"], campaign["batch_ids"]["five"]
    coupons = [await ok(claim(api, ten, f"cus_{n}"), 201) for n in range(3)]
    fives = [await ok(claim(api, five, f"cus_{n}"), 201) for n in range(2)]
    await lock(api, coupons[0]["id"], "cus_0", "o-1", 30_000)
    await lock(api, coupons[1]["id"], "cus_1", "o-2", 12_000)
    await lock(api, fives[0]["id"], "cus_0", "o-3", 8_000)
    await publish(
        service.bootstrap,
        tenant,
        paid("o-1", 30_000, customer="cus_0"),
        paid("o-2", 12_000, customer="cus_1"),
        paid("o-3", 8_000, customer="cus_0"),
        paid("o-plain", 50_000, customer="cus_9"),  # no coupon: not the budget's GMV
    )
    stats = await eventually(
        lambda: ok(api.get(f"/stats/budgets/{budget['id']}")),
        # Stats are read piece by piece, not as one snapshot: wait for both to settle.
        until=lambda s: s["orders"] == 3 and s["consumed"] == 2_500,
        within=40,
    )
    assert stats["achieved_gmv"] == 50_000 and stats["target_gmv"] == 100_000
    assert stats["remaining_gmv"] == 50_000
    # 1,000 + 1,000 + 500 of subsidy charged: consumed (above), no longer reserved
    assert stats["total"] == 1_000_000
    assert stats["reserved"] == 10 * 1_000 + 20 * 500 - 2_500
    assert stats["remaining"] == 1_000_000 - 20_000
    assert [(c["campaign_id"], c["gmv"], c["orders"]) for c in stats["campaigns"]] == [
        (campaign["id"], 50_000, 3)
    ]

    by_campaign = await ok(api.get(f"/stats/campaigns/{campaign['id']}"))
    assert (by_campaign["issued"], by_campaign["used"]) == (5, 3)
    assert (by_campaign["subsidy_spent"], by_campaign["gmv"]) == (2_500, 50_000)
    assert by_campaign["consumed"] == 2_500
    batches = {b["batch_id"]: b for b in by_campaign["batches"]}
    assert (batches[ten]["issued"], batches[ten]["used"], batches[ten]["gmv"]) == (3, 2, 42_000)
    assert (batches[five]["issued"], batches[five]["used"], batches[five]["gmv"]) == (2, 1, 8_000)

    # A partial refund takes its amount off the GMV; the coupon stays used.
    refund = OrderRefunded(
        customer_id="cus_0", order_id="o-1", refund_id="r-1", amount=10_000, lines=[],
        fully_refunded=False, refunded_at=paid("x", 1).paid_at,
    )  # fmt: skip
    await publish(service.bootstrap, tenant, refund)
    batch = await eventually(
        lambda: ok(api.get(f"/stats/batches/{ten}")),
        until=lambda b: b["gmv"] == 32_000,
        within=20,
    )
    assert (batch["issued"], batch["used"], batch["subsidy_spent"], batch["orders"]) == (
        3, 2, 2_000, 2
    )  # fmt: skip
    assert batch["stock"] == 10 and batch["campaign_id"] == campaign["id"]
    assert batch["left"] == 10 - 3  # exact, though replicas hold leased stock
    assert not batch["issuing_blocked"]
    budget_now = await ok(api.get(f"/stats/budgets/{budget['id']}"))
    assert (budget_now["achieved_gmv"], budget_now["remaining_gmv"]) == (40_000, 60_000)


async def test_stats_of_unknown_subjects_are_404_and_a_bad_target_is_refused(
    api: httpx.AsyncClient,
) -> None:
    for path, code in (
        ("/stats/budgets/bud_nope", "budget_not_found"),
        ("/stats/campaigns/cmp_nope", "campaign_not_found"),
        ("/stats/batches/bat_nope", "batch_not_found"),
    ):
        response = await api.get(path)
        assert (response.status_code, response.json()["code"]) == (404, code)
    bad = await api.post(
        "/budgets",
        json={"name": "x", "owner_kind": "region", "owner": "east", "amount": 1_000,
              "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2027-01-01T00:00:00Z",
              "target_gmv": -5},
    )  # fmt: skip
    assert bad.status_code == 422
    assert (await ok(api.get("/budgets")))["items"] == []
    fresh = await open_budget(api, 5_000)
    stats = await ok(api.get(f"/stats/budgets/{fresh['id']}"))
    assert (stats["target_gmv"], stats["remaining_gmv"], stats["achieved_gmv"]) == (None, None, 0)


async def test_a_department_budget_counts_the_gmv_of_its_regions_sub_budgets(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    department = await open_budget(api, 1_000_000, target_gmv=80_000)
    # Well inside the department's period (the store keeps times to the millisecond).
    period = {
        "starts_at": iso(now() - timedelta(hours=12)),
        "ends_at": iso(now() + timedelta(days=30)),
    }
    east = await open_budget(
        api, 200_000, owner_kind="region", owner="east", parent_id=department["id"],
        target_gmv=30_000, **period,
    )  # fmt: skip
    east_city = await open_budget(
        api,
        50_000,
        owner_kind="region",
        owner="east-city",
        parent_id=east["id"],
        starts_at=iso(now() - timedelta(hours=6)),
        ends_at=iso(now() + timedelta(days=20)),
    )
    orders = []
    for n, budget in enumerate((department, east, east_city)):
        campaign = await _campaign(api, budget["id"])
        coupon = await ok(claim(api, campaign["batch_ids"]["ten"], f"cus_d{n}"), 201)
        await lock(api, coupon["id"], f"cus_d{n}", f"o-d{n}", 10_000 * (n + 1))
        orders.append(paid(f"o-d{n}", 10_000 * (n + 1), customer=f"cus_d{n}"))
    await publish(service.bootstrap, tenant, *orders)
    stats = await eventually(
        lambda: ok(api.get(f"/stats/budgets/{department['id']}")),
        until=lambda s: s["orders"] == 3,
        within=40,
    )
    assert (stats["own_gmv"], stats["achieved_gmv"], stats["remaining_gmv"]) == (
        10_000, 60_000, 20_000
    )  # fmt: skip
    assert stats["allocated"] == 200_000
    assert [(s["budget_id"], s["achieved_gmv"]) for s in stats["sub_budgets"]] == [
        (east["id"], 50_000)
    ]
    regional = await ok(api.get(f"/stats/budgets/{east['id']}"))
    assert (regional["own_gmv"], regional["achieved_gmv"], regional["remaining_gmv"]) == (
        20_000, 50_000, 0
    )  # fmt: skip
    assert regional["sub_budgets"][0]["budget_id"] == east_city["id"]


async def test_an_orders_day_is_its_tenants_day_in_the_tenants_time_zone(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    # 03:00 UTC on the 24th is still the 23rd in Los Angeles, already noon in Shanghai.
    await ok(api.put("/policy", json={"time_zone": "America/Los_Angeles", "min_margin_percent": 5,
                                       "cost_ratio_percent": 70}))  # fmt: skip
    at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    await publish(service.bootstrap, tenant, paid("o-la", 9_000, merchant="m-la", at=at))
    db = service.app.state.runtime.db
    days = await eventually(
        lambda: db["subject_days"].find({"tenant": tenant}).to_list(),
        until=lambda found: len(found) == 2,  # the merchant's and the product's
        within=30,
    )
    assert {d["day"] for d in days} == {"2026-11-23"}
    order = await db["order_gmv"].find_one({"tenant": tenant, "order_id": "o-la"})
    assert order is not None and order["paid_day"] == "2026-11-23"
