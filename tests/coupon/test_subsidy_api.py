"""The subsidy strategy API (补贴策略): plans, indicators, the allocation with its inputs
against the budget, and applying it through the budget's ledger without overspending."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.coupon.support import Client, ok, open_budget


@pytest.fixture
async def analyst(client: Client) -> AsyncIterator[httpx.AsyncClient]:
    async with client({"X-Actor-Id": "analyst-1"}) as opened:
        yield opened


def plan_body(budget_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "new-customer subsidy, Q4",
        "budget_id": budget_id,
        "subject_kind": "merchant",
        "floor": 100,
        "ceiling": 1_100,
        "shape": 2.0,
        "weights": {"conversion": 1, "repurchase": 1, "average_order_value": 1},
        **fields,
    }


def shop(candidate_id: str, conversion: float, repurchase: float, aov: int) -> dict[str, Any]:
    return {
        "candidate_id": candidate_id,
        "conversion": conversion,
        "repurchase": repurchase,
        "average_order_value": aov,
    }


SHOPS = [
    shop("m_strong", 0.3, 0.5, 20_000),
    shop("m_middle", 0.2, 0.3, 15_000),
    shop("m_weak", 0.1, 0.1, 10_000),
]


async def plan_with_shops(
    analyst: httpx.AsyncClient, budget_id: str, shops: list[dict[str, Any]] = SHOPS
) -> dict[str, Any]:
    plan = await ok(analyst.post("/subsidy-plans", json=plan_body(budget_id)), 201)
    await ok(analyst.put(f"/subsidy-plans/{plan['id']}/indicators", json={"candidates": shops}))
    return plan


async def test_the_allocation_shows_each_merchants_subsidy_with_its_inputs(
    api: httpx.AsyncClient, analyst: httpx.AsyncClient
) -> None:
    budget = await open_budget(api, 10_000)
    plan = await plan_with_shops(analyst, budget["id"])
    assert (plan["state"], plan["subject_kind"], plan["created_by"]) == (
        "draft", "merchant", "analyst-1")  # fmt: skip
    view = await ok(analyst.get(f"/subsidy-plans/{plan['id']}/allocation"))
    assert view["plan"]["candidates"] == 3
    check = view["check"]
    assert (check["budget_id"], check["remaining"], check["within_budget"]) == (
        budget["id"], 10_000, True)  # fmt: skip
    assert check["fitted"] is None and "within the remaining 10000" in check["note"]
    lines = {line["candidate_id"]: line for line in check["requested"]["lines"]}
    assert {k: v["subsidy"] for k, v in lines.items()} == {
        "m_strong": 1_100, "m_middle": 350, "m_weak": 100}  # fmt: skip
    middle = lines["m_middle"]
    assert middle["inputs"] == {"conversion": 0.2, "repurchase": 0.3, "average_order_value": 15_000}
    assert middle["normalised"] == pytest.approx(
        {"conversion": 0.5, "repurchase": 0.5, "average_order_value": 0.5})  # fmt: skip
    assert middle["score"] == 0.5 and check["requested"]["total"] == 1_550
    assert (await ok(analyst.get(f"/subsidy-plans/{plan['id']}/indicators"))) == SHOPS
    listed = await ok(analyst.get("/subsidy-plans"))
    assert [p["id"] for p in listed["items"]] == [plan["id"]]


async def test_over_budget_says_so_offers_the_fitted_allocation_and_applies_only_if_asked(
    api: httpx.AsyncClient, analyst: httpx.AsyncClient
) -> None:
    budget = await open_budget(api, 700)
    plan = await plan_with_shops(analyst, budget["id"], SHOPS[::2])  # strong and weak: 1,200
    check = (await ok(analyst.get(f"/subsidy-plans/{plan['id']}/allocation")))["check"]
    assert check["within_budget"] is False and check["requested"]["total"] == 1_200
    assert "over the remaining 700" in check["note"]
    fitted = check["fitted"]
    assert fitted["total"] <= 700 and fitted["scale"] < 1
    assert [line["subsidy"] for line in fitted["lines"]] == [600, 100]

    refused = await api.post(f"/subsidy-plans/{plan['id']}/apply")
    assert refused.status_code == 409 and refused.json()["code"] == "over_budget"
    assert refused.json()["fitted_total"] == 700
    forbidden = await analyst.post(f"/subsidy-plans/{plan['id']}/apply",
                                   json={"accept_fitted": True})  # fmt: skip
    assert forbidden.status_code == 403
    ledger = await ok(api.get(f"/budgets/{budget['id']}/ledger"))
    assert [e["movement"] for e in ledger["entries"]] == ["opened"]  # nothing changed

    applied = await ok(api.post(f"/subsidy-plans/{plan['id']}/apply", json={"accept_fitted": True}))
    assert applied["state"] == "applied" and applied["applied"]["amount"] == 700
    assert applied["applied"]["subsidies"] == {"m_strong": 600, "m_weak": 100}
    assert applied["applied"]["by"] == "ops-1"
    ledger = await ok(api.get(f"/budgets/{budget['id']}/ledger"))
    assert ledger["budget"]["reserved"] == 700 and ledger["budget"]["remaining"] == 0
    assert ledger["entries"][-1]["note"] == f"subsidy plan {plan['id']}"
    assert ledger["explained"] is True
    view = await ok(analyst.get(f"/subsidy-plans/{plan['id']}/allocation"))
    assert view["check"]["remaining"] == 700  # what the budget holds for the plan counts
    assert view["check"]["fitted"]["total"] == view["plan"]["applied"]["amount"]

    frozen = await analyst.put(f"/subsidy-plans/{plan['id']}/indicators",
                               json={"candidates": SHOPS})  # fmt: skip
    assert frozen.status_code == 409 and frozen.json()["code"] == "plan_state"
    again = await api.post(f"/subsidy-plans/{plan['id']}/apply", json={"accept_fitted": True})
    assert again.status_code == 409 and again.json()["code"] == "plan_state"

    released = await ok(api.post(f"/subsidy-plans/{plan['id']}/release"))
    assert released["state"] == "released" and released["released_by"] == "ops-1"
    ledger = await ok(api.get(f"/budgets/{budget['id']}/ledger"))
    assert ledger["budget"]["remaining"] == 700 and ledger["explained"] is True
    assert [e["movement"] for e in ledger["entries"]] == ["opened", "reserve", "release"]


async def test_a_budget_below_every_floor_together_fits_nothing(
    api: httpx.AsyncClient, analyst: httpx.AsyncClient
) -> None:
    budget = await open_budget(api, 250)
    plan = await plan_with_shops(analyst, budget["id"])  # three floors of 100
    check = (await ok(analyst.get(f"/subsidy-plans/{plan['id']}/allocation")))["check"]
    assert check["within_budget"] is False and check["fitted"] is None
    assert "floor together (300)" in check["note"]
    refused = await api.post(f"/subsidy-plans/{plan['id']}/apply", json={"accept_fitted": True})
    assert refused.status_code == 409 and refused.json()["code"] == "budget_below_floors"
    empty = await ok(analyst.post("/subsidy-plans", json=plan_body(budget["id"])), 201)
    nothing = await api.post(f"/subsidy-plans/{empty['id']}/apply")
    assert nothing.status_code == 409 and nothing.json()["code"] == "no_indicators"


async def test_bad_plans_and_indicators_are_clear_problems_and_change_nothing(
    api: httpx.AsyncClient, analyst: httpx.AsyncClient
) -> None:
    budget = await open_budget(api, 10_000)

    async def refused(response: httpx.Response, fields: set[str], code: str) -> None:
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == code and fields <= {e["field"] for e in problem["errors"]}

    await refused(await analyst.post("/subsidy-plans", json=plan_body(budget["id"], ceiling=50)),
                  {"ceiling"}, "validation_failed")  # fmt: skip
    zero = {"conversion": 0, "repurchase": 0, "average_order_value": 0}
    await refused(await analyst.post("/subsidy-plans", json=plan_body(budget["id"], weights=zero)),
                  {"weights"}, "validation_failed")  # fmt: skip
    bad = plan_body(budget["id"], shape=0, subject_kind="shop", aov=1)
    await refused(await analyst.post("/subsidy-plans", json=bad),
                  {"shape", "subject_kind", "aov"}, "validation_failed")  # fmt: skip
    await refused(await analyst.post("/subsidy-plans", json=plan_body("bud_nope")),
                  {"budget_id"}, "budget_not_found")  # fmt: skip
    assert (await ok(analyst.get("/subsidy-plans")))["items"] == []

    plan = await plan_with_shops(analyst, budget["id"])
    path = f"/subsidy-plans/{plan['id']}/indicators"
    twice = {"candidates": [SHOPS[0], SHOPS[1], SHOPS[0]]}
    await refused(await analyst.put(path, json=twice), {"candidates.2.candidate_id"},
                  "duplicate_candidate")  # fmt: skip
    too_high = {"candidates": [{**SHOPS[0], "conversion": 1.5}]}
    await refused(await analyst.put(path, json=too_high), {"candidates.0.conversion"},
                  "validation_failed")  # fmt: skip
    assert (await ok(analyst.get(path))) == SHOPS
    missing = await analyst.get("/subsidy-plans/spl_nope/allocation")
    assert missing.status_code == 404 and missing.json()["code"] == "subsidy_plan_not_found"


async def test_concurrent_applications_never_reserve_more_than_the_budget(
    api: httpx.AsyncClient, analyst: httpx.AsyncClient
) -> None:
    """Ten plans of 1,550 each race for 5,000: exactly three are applied, each once even
    when sent twice at once, and the ledger adds up."""
    budget = await open_budget(api, 5_000)
    plans = [await plan_with_shops(analyst, budget["id"]) for _ in range(10)]
    answers = await asyncio.gather(
        *(api.post(f"/subsidy-plans/{p['id']}/apply") for p in plans for _ in range(2))
    )
    assert Counter(r.status_code for r in answers) == {200: 3, 409: 17}
    codes = {r.json()["code"] for r in answers if r.status_code == 409}
    assert codes <= {"plan_state", "budget_exceeded", "over_budget"}
    ledger = await ok(api.get(f"/budgets/{budget['id']}/ledger"))
    assert ledger["budget"]["reserved"] == 4_650 and ledger["budget"]["remaining"] == 350
    assert ledger["explained"] is True
