"""Budgets and campaign approval: every movement is in the ledger, and no interleaving of
approvals overspends a budget."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from tests.coupon.support import (
    Client,
    batch_spec,
    draft_campaign,
    iso,
    now,
    ok,
    open_budget,
    step,
)


async def test_a_budget_opens_tops_up_and_explains_itself_in_its_ledger(
    api: httpx.AsyncClient,
) -> None:
    budget = await open_budget(api, 50_000)
    assert budget["remaining"] == 50_000
    topped = await ok(api.post(f"/budgets/{budget['id']}/top-ups", json={"amount": 5_000}))
    assert (topped["amount"], topped["remaining"]) == (55_000, 55_000)
    ledger = await ok(api.get(f"/budgets/{budget['id']}/ledger"))
    assert [e["movement"] for e in ledger["entries"]] == ["opened", "top_up"]
    assert ledger["explained"] is True


async def test_a_sub_budget_is_allocated_from_its_parent_and_cannot_exceed_it(
    api: httpx.AsyncClient,
) -> None:
    parent = await open_budget(api, 10_000)
    within = {"starts_at": iso(now()), "ends_at": iso(now() + timedelta(days=30))}
    child = await open_budget(
        api, 6_000, parent_id=parent["id"], owner_kind="region", owner="east", **within
    )
    after = await ok(api.get(f"/budgets/{parent['id']}"))
    assert (after["allocated"], after["remaining"]) == (6_000, 4_000)
    assert child["parent_id"] == parent["id"]
    too_much = await api.post(
        "/budgets",
        json={
            "name": "west",
            "owner_kind": "region",
            "owner": "west",
            "amount": 4_001,
            **within,
            "parent_id": parent["id"],
        },
    )
    assert too_much.status_code == 409 and too_much.json()["code"] == "budget_exceeded"
    assert (await ok(api.get(f"/budgets/{parent['id']}/ledger")))["explained"] is True


async def test_bad_budget_input_is_a_clear_problem_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    bad = {"name": "x", "owner_kind": "department", "owner": {"$gt": ""}, "amount": -5}
    response = await api.post("/budgets", json=bad)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"owner", "amount"} <= fields
    assert (await ok(api.get("/budgets")))["items"] == []


async def test_a_campaign_goes_through_approval_with_who_and_when_and_reserves_its_subsidy(
    api: httpx.AsyncClient,
) -> None:
    budget = await open_budget(api, 200_000)
    campaign = await draft_campaign(api, budget["id"], batch_spec(stock=100))
    assert (campaign["state"], campaign["max_subsidy"]) == ("draft", 100_000)
    await step(api, campaign["id"], "submit")
    approved = await step(api, campaign["id"], "approve")
    assert approved["state"] == "approved"
    assert [h["step"] for h in approved["history"]] == ["submit", "approve"]
    assert approved["history"][1]["by"] == "ops-1"
    assert set(approved["batch_ids"]) == {"main"}
    after = await ok(api.get(f"/budgets/{budget['id']}"))
    assert (after["reserved"], after["remaining"]) == (100_000, 100_000)
    batches = await ok(api.get(f"/campaigns/{campaign['id']}/batches"))
    assert [b["state"] for b in batches] == ["scheduled"]
    running = await step(api, campaign["id"], "start")
    assert running["state"] == "running"
    ended = await step(api, campaign["id"], "end")
    assert (ended["state"], ended["released"]) == ("ended", 100_000)
    final = await ok(api.get(f"/budgets/{budget['id']}/ledger"))
    assert final["budget"]["remaining"] == 200_000 and final["explained"] is True
    assert [e["movement"] for e in final["entries"]] == ["opened", "reserve", "release"]


async def test_steps_out_of_order_and_approval_without_the_role_are_refused(
    api: httpx.AsyncClient, client: Client
) -> None:
    budget = await open_budget(api, 200_000)
    campaign = await draft_campaign(api, budget["id"])
    refused = await api.post(f"/campaigns/{campaign['id']}/approve")
    assert refused.status_code == 409 and refused.json()["code"] == "campaign_state"
    await step(api, campaign["id"], "submit")
    async with client({"X-Actor-Id": "intern"}) as intern:
        forbidden = await intern.post(f"/campaigns/{campaign['id']}/approve")
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "not_approver"
    rejected = await step(api, campaign["id"], "reject")
    assert rejected["state"] == "rejected"
    assert (await ok(api.get(f"/budgets/{budget['id']}")))["reserved"] == 0


async def test_a_campaign_over_the_remaining_budget_cannot_be_approved(
    api: httpx.AsyncClient,
) -> None:
    budget = await open_budget(api, 99_999)
    campaign = await draft_campaign(api, budget["id"], batch_spec(stock=100))
    await step(api, campaign["id"], "submit")
    refused = await api.post(f"/campaigns/{campaign['id']}/approve")
    assert refused.status_code == 409
    assert refused.json()["code"] == "budget_exceeded"
    assert (await ok(api.get(f"/campaigns/{campaign['id']}")))["state"] == "pending_approval"
    assert (await ok(api.get(f"/campaigns/{campaign['id']}/batches"))) == []


async def test_many_concurrent_approvals_never_overspend_the_budget(
    api: httpx.AsyncClient,
) -> None:
    """20 campaigns of 10,000 each race for a budget of 75,000: exactly 7 are approved,
    each approval is approved once even when sent twice at once, and the ledger adds up."""
    budget = await open_budget(api, 75_000, alert_thresholds=[50, 90])
    campaigns = [await draft_campaign(api, budget["id"], batch_spec(stock=10)) for _ in range(20)]
    for campaign in campaigns:
        await step(api, campaign["id"], "submit")
    approvals = [api.post(f"/campaigns/{c['id']}/approve") for c in campaigns for _ in range(2)]
    answers = await asyncio.gather(*approvals)
    approved_ids = {r.json()["id"] for r in answers if r.status_code == 200}
    codes = sorted(r.json()["code"] for r in answers if r.status_code != 200)
    assert len(approved_ids) == 7
    assert sum(r.status_code == 200 for r in answers) == 7, "a campaign was approved twice"
    assert set(codes) <= {"budget_exceeded", "campaign_state", "concurrent_update"}
    ledger = await ok(api.get(f"/budgets/{budget['id']}/ledger"))
    assert ledger["budget"]["reserved"] == 70_000
    assert ledger["budget"]["remaining"] == 5_000
    assert ledger["explained"] is True
    assert sorted(ledger["budget"]["alerts_raised"]) == [50, 90]
