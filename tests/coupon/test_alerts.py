"""Alerts under a simulated campaign, on the real broker and store: a claim burst raises a
stock alert, a second burst updates it, quiet clears it; a budget alert is listed,
acknowledged (by whom), resolved by hand or by a top-up, and blocks new approvals while
the campaign that committed the budget still issues; used coupons spending the budget past
its line block issuing too, until a top-up; raised once however many evaluators race;
efficiency alerts from paid orders with and without coupons. Every step is published as
the contract events on the coupon topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts import Topic
from services.coupon.domain import alerts as rules
from services.coupon.service.alert_evaluator import alert_service
from tests.coupon.orders import checkout, lock, paid, publish
from tests.coupon.support import (
    Service,
    batch_spec,
    claim,
    draft_campaign,
    ok,
    open_budget,
    running_batches,
    step,
)
from tests.support.events import published
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {
        "alert_sweep_seconds": 0.3,
        "alert_update_min_seconds": 0.3,
        "stock_rate_window_seconds": 3.0,
        "stock_alert_min_claims": 10,
        "stock_evaluate_min_seconds": 0.2,
        "efficiency_sweep_seconds": 0.5,
        "efficiency_min_subsidy": 100,
    }


async def alerts(api: httpx.AsyncClient, **query: str) -> list[dict[str, Any]]:
    return (await ok(api.get("/alerts", params=query)))["items"]


async def alert_events(service: Service, tenant: str, alert_id: str) -> list[str]:
    envelopes = await published(service.bootstrap, tenant=tenant, topic=Topic.COUPON)
    return [
        e.type.split(".")[1]
        for e in envelopes
        if e.type.startswith("coupon.alert_") and e.data["alert_id"] == alert_id
    ]


async def burst(api: httpx.AsyncClient, batch_id: str, first: int, count: int) -> None:
    answers = await asyncio.gather(
        *(claim(api, batch_id, f"cus_{n}") for n in range(first, first + count))
    )
    assert all(a.status_code == 201 for a in answers)


async def test_a_claim_burst_raises_a_stock_alert_a_second_updates_it_and_quiet_clears_it(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(api, batch_spec("flash", stock=400))
    batch_id = ids["flash"]
    await burst(api, batch_id, 0, 40)  # ~13/s over the window: 360 last half a minute
    open_alert = await eventually(
        lambda: alerts(api, kind="stock", state="open"), until=lambda a: len(a) == 1
    )
    alert = open_alert[0]
    assert (alert["subject_id"], alert["severity"], alert["owner"]) == (
        batch_id,
        "warning",
        "growth",
    )
    assert alert["budget_id"] and alert["measures"]["claims_per_second"] > 0

    await burst(api, batch_id, 40, 60)  # faster, fewer left: the alert moves
    updated = await eventually(
        lambda: ok(api.get(f"/alerts/{alert['id']}")), until=lambda a: a["updates"] >= 1
    )
    assert updated["id"] == alert["id"] and updated["state"] == "raised"
    assert updated["measures"]["claims_per_second"] > alert["measures"]["claims_per_second"]

    # No more claims: the window empties, the projection no longer holds.
    resolved = await eventually(
        lambda: ok(api.get(f"/alerts/{alert['id']}")),
        until=lambda a: a["state"] == "resolved",
        within=15,
    )
    assert resolved["resolved_by"] == "system"
    assert await alerts(api, kind="stock", state="open") == []
    kinds = await eventually(
        lambda: alert_events(service, tenant, alert["id"]), until=lambda k: "alert_resolved" in k
    )
    assert kinds[0] == "alert_raised" and kinds[-1] == "alert_resolved"
    assert kinds.count("alert_raised") == 1 and "alert_updated" in kinds


async def _blocked_budget(api: httpx.AsyncClient) -> tuple[dict, dict, str]:
    """A budget whose approved campaign took it to 96% committed (its line is 95%), its
    alert, and the campaign's batch."""
    budget = await open_budget(api, 100_000, alert_thresholds=[80, 95])
    campaign = await draft_campaign(api, budget["id"], batch_spec(stock=96))
    for name in ("submit", "approve", "start"):
        campaign = await step(api, campaign["id"], name)
    found = await eventually(
        lambda: alerts(api, kind="budget", state="open"), until=lambda a: len(a) == 1
    )
    return budget, found[0], next(iter(campaign["batch_ids"].values()))


async def test_a_budget_alert_is_acknowledged_resolved_by_hand_raised_again_and_cleared_by_top_up(
    api: httpx.AsyncClient, client: Any, service: Service, tenant: str
) -> None:
    budget, alert, batch_id = await _blocked_budget(api)
    assert (alert["state"], alert["budget_id"], alert["owner"]) == (
        "raised",
        budget["id"],
        "growth",
    )
    blocked = await ok(api.get(f"/budgets/{budget['id']}"))
    assert (blocked["approvals_blocked"], blocked["issuing_blocked"]) == (True, False)
    assert alert["blocks_issuing"] is False and alert["measures"]["consumed"] == 0
    # No new campaign under it; the campaign whose reservation committed it still issues.
    other = await draft_campaign(api, budget["id"], batch_spec(stock=1))
    await step(api, other["id"], "submit")
    refused = await api.post(f"/campaigns/{other['id']}/approve")
    assert (refused.status_code, refused.json()["code"]) == (409, "budget_blocked")
    grant = {"customer_id": "cus_g", "channel": "points_exchange", "reference": "x-1"}
    await ok(api.post(f"/batches/{batch_id}/grants", json=grant), 201)
    await ok(claim(api, batch_id, "cus_c"), 201)

    async with client({"X-Actor-Id": "ops-duty"}) as ops:
        acked = await ok(ops.post(f"/alerts/{alert['id']}/acknowledge"))
        assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "ops-duty")
        again = await ok(ops.post(f"/alerts/{alert['id']}/acknowledge"))
        assert again["acknowledged_at"] == acked["acknowledged_at"]  # once
        by_hand = await ok(ops.post(f"/alerts/{alert['id']}/resolve"))
        assert (by_hand["state"], by_hand["resolved_by"]) == ("resolved", "ops-duty")
        late = await ops.post(f"/alerts/{alert['id']}/acknowledge")
        assert (late.status_code, late.json()["code"]) == (409, "alert_resolved")

    # Resolving is not silencing: the condition still holds, so a new alert is raised.
    second = await eventually(
        lambda: alerts(api, kind="budget", state="open"), until=lambda a: len(a) == 1
    )
    assert second[0]["id"] != alert["id"]
    await ok(api.post(f"/budgets/{budget['id']}/top-ups", json={"amount": 10_000}))
    await eventually(lambda: alerts(api, kind="budget", state="open"), until=lambda a: a == [])
    lifted = await ok(api.get(f"/budgets/{budget['id']}"))
    assert (lifted["approvals_blocked"], lifted["issuing_blocked"]) == (False, False)
    assert (await ok(api.post(f"/campaigns/{other['id']}/approve")))["state"] == "approved"
    resolved = await alerts(api, kind="budget", state="resolved")
    assert {a["id"] for a in resolved} == {alert["id"], second[0]["id"]}
    assert await alert_events(service, tenant, alert["id"]) == [
        "alert_raised", "alert_acknowledged", "alert_resolved"
    ]  # fmt: skip


async def _use(api: httpx.AsyncClient, coupon: dict, order_id: str, amount: int) -> int:
    """The customer's checkout quotes the order, locks the coupon and pays: its discount."""
    customer = coupon["customer_id"]
    quote = await ok(api.post(f"/customers/{customer}/quote", json=checkout(order_id, amount)))
    assert [o["coupon_id"] for o in quote["applicable"]] == [coupon["id"]]
    await lock(api, coupon["id"], customer, order_id, amount)
    return int((await ok(api.post(f"/orders/{order_id}/confirm")))["discount"])


async def test_used_coupons_spending_the_budget_past_its_line_block_issuing_until_a_top_up(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    budget = await open_budget(api, 100_000, alert_thresholds=[80, 95])  # line: 5,000
    big = {"kind": "threshold", "amount": 24_000, "threshold": 100_000}  # 24% off: margin ok
    small = {"kind": "threshold", "amount": 50, "threshold": 10_000}
    campaign = await draft_campaign(
        api, budget["id"], batch_spec("big", discount=big, stock=4),
        batch_spec("small", discount=small, stock=80),
    )  # fmt: skip
    # 4 x 24,000 + 80 x 50: the whole budget reserved
    for name in ("submit", "approve", "start"):
        campaign = await step(api, campaign["id"], name)
    big_id, small_id = campaign["batch_ids"]["big"], campaign["batch_ids"]["small"]
    alert = (
        await eventually(
            lambda: alerts(api, kind="budget", state="open"), until=lambda a: len(a) == 1
        )
    )[0]
    assert alert["blocks_issuing"] is False  # fully reserved, nothing spent: still issuing
    coupons = [await ok(claim(api, big_id, f"cus_b{n}"), 201) for n in range(4)]
    await ok(claim(api, small_id, "cus_s0"), 201)

    spent = [await _use(api, c, f"o-big-{n}", 100_000) for n, c in enumerate(coupons)]
    assert spent == [24_000] * 4  # consumed 96,000: 4,000 left of the amount, under 5,000
    now_blocked = await eventually(
        lambda: ok(api.get(f"/budgets/{budget['id']}")), until=lambda b: b["issuing_blocked"]
    )
    assert (now_blocked["consumed"], now_blocked["approvals_blocked"]) == (96_000, True)
    updated = await ok(api.get(f"/alerts/{alert['id']}"))
    assert updated["blocks_issuing"] is True and updated["measures"]["consumed"] == 96_000
    assert updated["state"] == "raised" and updated["updates"] >= 1  # the same alert
    callers = (f"cus_s{n}" for n in range(1, 100))  # one claim each: none hits its limit
    refused = await eventually(  # once the claim desk's batch cache (1 s) has it
        lambda: claim(api, small_id, next(callers)), until=lambda r: r.status_code == 409
    )
    assert refused.json()["code"] == "budget_blocked"
    grant = {"customer_id": "cus_g", "channel": "points_exchange", "reference": "spent-1"}
    refused = await api.post(f"/batches/{small_id}/grants", json=grant)
    assert (refused.status_code, refused.json()["code"]) == (409, "budget_blocked")
    stats = await ok(api.get(f"/stats/budgets/{budget['id']}"))
    assert (stats["approvals_blocked"], stats["issuing_blocked"]) == (True, True)
    assert (await ok(api.get(f"/stats/batches/{small_id}")))["issuing_blocked"] is True

    # 2,000 more: amount - consumed is 6,000, over the line (5,100): issuing resumes, while
    # the budget stays committed past it (100,000 of 102,000): approvals stay blocked.
    await ok(api.post(f"/budgets/{budget['id']}/top-ups", json={"amount": 2_000}))
    lifted = await eventually(
        lambda: ok(api.get(f"/budgets/{budget['id']}")), until=lambda b: not b["issuing_blocked"]
    )
    assert lifted["approvals_blocked"] is True
    await eventually(
        lambda: claim(api, small_id, next(callers)), until=lambda r: r.status_code == 201
    )
    await ok(api.post(f"/batches/{small_id}/grants", json=grant), 201)
    still = await ok(api.get(f"/alerts/{alert['id']}"))
    assert (still["state"], still["blocks_issuing"]) == ("raised", False)
    kinds = await eventually(
        lambda: alert_events(service, tenant, alert["id"]),
        until=lambda k: k.count("alert_updated") >= 2,
    )
    assert kinds[0] == "alert_raised" and "alert_resolved" not in kinds


async def test_bad_alert_requests_are_problems_that_change_nothing(api: httpx.AsyncClient) -> None:
    for query in ({"state": "bogus"}, {"kind": "weather"}, {"limit": "0"}):
        response = await api.get("/alerts", params=query)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    missing = await api.post("/alerts/alr_nope/acknowledge")
    assert (missing.status_code, missing.json()["code"]) == (404, "alert_not_found")
    assert (await api.get("/alerts/bad id")).status_code in (404, 422)
    assert await alerts(api) == []


async def test_an_open_condition_is_raised_once_however_many_evaluators_race(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    budget = await open_budget(api, 100_000, alert_thresholds=[50])
    finding = rules.Finding(
        kind=rules.AlertKind.BUDGET, subject_kind="budget", subject_id=budget["id"],
        severity=rules.Severity.CRITICAL, title="t", detail="d", measures={"remaining": 1.0},
        budget_id=budget["id"], owner="growth",
    )  # fmt: skip
    evaluators = [alert_service(service.app.state.runtime) for _ in range(20)]
    now = datetime.now(UTC)
    await asyncio.gather(*(e.apply(tenant, finding.key, finding, now) for e in evaluators))
    raised = await alerts(api, kind="budget")
    assert len(raised) == 1
    envelopes = await published(service.bootstrap, tenant=tenant, topic=Topic.COUPON)
    assert [e.type for e in envelopes].count("coupon.alert_raised.v1") == 1
    # The real condition does not hold (nothing committed): the evaluator clears it.
    await eventually(lambda: alerts(api, kind="budget", state="open"), until=lambda a: a == [])


async def test_subsidy_that_does_not_beat_comparable_merchants_raises_an_efficiency_alert(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(api, batch_spec("eff", stock=10))
    coupon = await ok(claim(api, ids["eff"], "cus_s"), 201)
    await lock(api, coupon["id"], "cus_s", "o-sub", 10_000)
    base = datetime.now(UTC) - timedelta(days=10)  # the period before the last 7 days
    peers = [
        event
        for n, growth in ((1, 12_000), (2, 15_000), (3, 11_000))
        for event in (
            paid(f"o-p{n}-base", 10_000, merchant=f"m-{n}", sku=f"sku-{n}", at=base),
            paid(f"o-p{n}-now", growth, merchant=f"m-{n}", sku=f"sku-{n}"),
        )
    ]
    subsidised = [
        paid("o-s-base", 10_000, merchant="m-s", sku="sku-s", at=base),
        paid("o-sub", 10_000, customer="cus_s", merchant="m-s", sku="sku-s"),  # +0%, coupon
    ]
    await publish(service.bootstrap, tenant, *peers, *subsidised)
    found = await eventually(
        lambda: alerts(api, kind="efficiency", state="open"),
        until=lambda a: {x["subject_kind"] for x in a} == {"merchant", "product"},
        within=40,
    )
    merchant = next(a for a in found if a["subject_kind"] == "merchant")
    assert merchant["subject_id"] == "m-s" and merchant["owner"] == "growth"
    assert merchant["budget_id"] and merchant["measures"]["benchmark_percent"] == 20.0
    assert (
        merchant["measures"]["growth_percent"] == 0.0 and merchant["measures"]["subsidy"] == 1_000
    )
    assert {a["subject_id"] for a in found} == {"m-s", "sku-s"}
    first = await ok(api.get("/alerts", params={"kind": "efficiency", "limit": 1}))
    cursor = first["next_cursor"]
    rest = await ok(api.get("/alerts", params={"kind": "efficiency", "cursor": cursor}))
    assert len(first["items"]) == len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {first["items"][0]["id"], rest["items"][0]["id"]} == {a["id"] for a in found}

    # The subsidised merchant sells much more: it beats its peers, the alerts clear.
    await publish(service.bootstrap, tenant, paid("o-s-more", 20_000, merchant="m-s", sku="sku-s"))
    await eventually(
        lambda: alerts(api, kind="efficiency", state="open"), until=lambda a: a == [], within=20
    )
