"""Refunds after a coupon was used: a partial refund gives back the refunded lines'
pro-rated share of the discount (the coupon stays used); once the whole order is refunded
the coupon returns to the wallet, or, when its batch keeps used coupons, the whole
subsidy goes back to the budget. Every movement is a ledger entry; each refund counts once,
and each of many concurrent confirms charges the budget once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.coupon.support import batch_spec, claim, ok, running_batches


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"consumer_groups": set()}  # refunds by API here (events: test_redemption.py)


def order(order_id: str) -> dict[str, Any]:
    """Two lines: 80 and 40 (分 x100); a 满100减10 coupon splits as 6.67 and 3.33."""
    lines = [
        {"line_id": "1", "product_id": "p-1", "price": 8_000, "quantity": 1},
        {"line_id": "2", "product_id": "p-2", "price": 2_000, "quantity": 2},
    ]
    return {"order_id": order_id, "lines": lines}


async def used_coupon(api: httpx.AsyncClient, batch_id: str, customer: str, order_id: str) -> dict:
    coupon = await ok(claim(api, batch_id, customer), 201)
    body = {"customer_id": customer, "order": order(order_id)}
    await ok(api.post(f"/coupons/{coupon['id']}/lock", json=body))
    return await ok(api.post(f"/orders/{order_id}/confirm"))


async def refund(api: httpx.AsyncClient, order_id: str, **body: Any) -> dict:
    return await ok(api.post(f"/orders/{order_id}/refund", json=body or None))


async def accounts(api: httpx.AsyncClient, campaign_id: str) -> tuple[dict, dict]:
    campaign = await ok(api.get(f"/campaigns/{campaign_id}"))
    ledger = await ok(api.get(f"/budgets/{campaign['budget_id']}/ledger"))
    return campaign, ledger


async def test_a_partial_refund_gives_back_its_share_and_the_rest_returns_the_coupon(
    api: httpx.AsyncClient,
) -> None:
    ids = await running_batches(api, batch_spec(stock=10))
    used = await used_coupon(api, ids["main"], "cus_p", "o-p")
    assert used["lock"]["shares"] == {
        "1": {"amount": 667, "quantity": 1},
        "2": {"amount": 333, "quantity": 2},
    }
    one_piece = await refund(api, "o-p", refund_id="r-1", lines=[{"line_id": "2", "quantity": 1}])
    assert (one_piece["restored"], one_piece["reason"], one_piece["given_back"]) == (
        False,
        "partly_refunded",
        166,
    )
    assert one_piece["coupon"]["state"] == "used"
    seen = await refund(api, "o-p", refund_id="r-1", lines=[{"line_id": "2", "quantity": 1}])
    assert (seen["reason"], seen["given_back"]) == ("refund_seen", 0)
    campaign, ledger = await accounts(api, used["campaign_id"])
    assert (campaign["consumed"], campaign["reserved"]) == (834, 9_166)
    restores = [e for e in ledger["entries"] if e["movement"] == "restore"]
    assert [(e["amount"], e["coupon_id"]) for e in restores] == [(166, used["id"])]
    assert "r-1" in restores[0]["note"] and ledger["explained"] is True

    rest = await refund(
        api,
        "o-p",
        refund_id="r-2",
        lines=[{"line_id": "1", "quantity": 1}, {"line_id": "2", "quantity": 1}],
    )
    assert (rest["restored"], rest["given_back"]) == (True, 834)
    assert rest["coupon"]["state"] == "available" and rest["coupon"]["given_back"] == 0
    campaign, ledger = await accounts(api, used["campaign_id"])
    assert (campaign["consumed"], campaign["reserved"]) == (0, 10_000)
    assert ledger["budget"]["consumed"] == 0 and ledger["explained"] is True
    again = await refund(api, "o-p", refund_id="r-3", lines=[{"line_id": "1", "quantity": 1}])
    assert (again["reason"], again["given_back"]) == ("no_coupon_used", 0)


async def test_a_whole_refund_of_a_batch_that_keeps_used_coupons_gives_the_subsidy_back(
    api: httpx.AsyncClient,
) -> None:
    """The coupon stays used, and the budget gets back the part of the discount not given
    back yet: restored from consumed, then released from the reservation."""
    ids = await running_batches(api, batch_spec(stock=10, return_on_refund=False))
    used = await used_coupon(api, ids["main"], "cus_k", "o-k")
    part = await refund(api, "o-k", refund_id="r-1", lines=[{"line_id": "1", "quantity": 1}])
    assert part["given_back"] == 667
    _, before = await accounts(api, used["campaign_id"])
    whole = await refund(api, "o-k")
    assert (whole["restored"], whole["reason"], whole["given_back"]) == (
        False,
        "batch_keeps_used_coupons",
        333,
    )
    assert whole["coupon"]["state"] == "used" and whole["coupon"]["given_back"] == 1_000
    assert (await refund(api, "o-k"))["given_back"] == 0  # once
    campaign, ledger = await accounts(api, used["campaign_id"])
    assert (campaign["consumed"], campaign["released"], campaign["reserved"]) == (0, 1_000, 9_000)
    movements = [(e["movement"], e["amount"]) for e in ledger["entries"]][-4:]
    assert movements == [("restore", 667), ("release", 667), ("restore", 333), ("release", 333)]
    assert ledger["budget"]["remaining"] == before["budget"]["remaining"] + 333
    assert ledger["explained"] is True


async def test_refund_input_is_checked(api: httpx.AsyncClient) -> None:
    ids = await running_batches(api, batch_spec(stock=10))
    await used_coupon(api, ids["main"], "cus_b", "o-b")
    bad = await api.post(
        "/orders/o-b/refund", json={"refund_id": {"$ne": 1}, "lines": [{"line_id": "1"}]}
    )
    assert bad.status_code == 422
    none = await api.post("/orders/o-b/refund", json={"refund_id": "r-0", "lines": []})
    assert none.status_code == 422
    coupon = (await ok(api.get("/customers/cus_b/coupons")))["items"][0]
    assert coupon["state"] == "used" and coupon["given_back"] == 0


async def test_concurrent_confirms_of_one_budget_each_charge_it_exactly_once(
    api: httpx.AsyncClient,
) -> None:
    """100 orders over four campaigns of one budget confirmed at once: every one is used
    and charged once, and the budget's counters are what its ledger says."""
    budget = (await ok(api.post("/budgets", json=_budget()), 201))["id"]
    orders: list[str] = []
    for k in range(4):
        campaign = await ok(
            api.post(
                "/campaigns",
                json={"name": f"c{k}", "budget_id": budget, "batches": [batch_spec(stock=25)]},
            ),
            201,
        )
        for name in ("submit", "approve", "start"):
            approved = await ok(api.post(f"/campaigns/{campaign['id']}/{name}"))
        batch_id = approved["batch_ids"]["main"]

        async def locked(n: int, k: int = k, batch_id: str = batch_id) -> str:
            coupon = await ok(claim(api, batch_id, f"cus_{k}_{n}"), 201)
            order_id = f"o-{k}-{n}"
            body = {"customer_id": coupon["customer_id"], "order": order(order_id)}
            await ok(api.post(f"/coupons/{coupon['id']}/lock", json=body))
            return order_id

        orders += await asyncio.gather(*(locked(n) for n in range(25)))
    answers = await asyncio.gather(*(api.post(f"/orders/{o}/confirm") for o in orders))
    assert {r.status_code for r in answers} == {200}
    ledger = await ok(api.get(f"/budgets/{budget}/ledger"))
    consumes = [e for e in ledger["entries"] if e["movement"] == "consume"]
    assert len(consumes) == 100 and len({e["coupon_id"] for e in consumes}) == 100
    assert ledger["budget"]["consumed"] == 100_000 and ledger["explained"] is True


def _budget() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "name": "many campaigns",
        "owner_kind": "department",
        "owner": "growth",
        "amount": 10_000_000,
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
    }


async def test_a_round_of_confirms_answers_each_order_for_itself(api: httpx.AsyncClient) -> None:
    """Confirms arriving together share a round: an unknown order is a 404 of its own, a
    repeated order is confirmed once, the others are charged once each."""
    ids = await running_batches(api, batch_spec(stock=10))
    orders = []
    for n in range(5):
        coupon = await ok(claim(api, ids["main"], f"cus_round_{n}"), 201)
        body = {"customer_id": coupon["customer_id"], "order": order(f"o-round-{n}")}
        await ok(api.post(f"/coupons/{coupon['id']}/lock", json=body))
        orders.append(f"o-round-{n}")
    asked = [*orders, "o-unknown", orders[0]]
    answers = await asyncio.gather(*(api.post(f"/orders/{o}/confirm") for o in asked))
    assert [r.status_code for r in answers] == [200] * 5 + [404, 200]
    assert answers[5].json()["code"] == "no_coupon_for_order"
    assert answers[0].json()["id"] == answers[6].json()["id"]
    campaign_id = answers[0].json()["campaign_id"]
    campaign = await ok(api.get(f"/campaigns/{campaign_id}"))
    ledger = await ok(api.get(f"/budgets/{campaign['budget_id']}/ledger"))
    assert [e["movement"] for e in ledger["entries"]].count("consume") == 5
    assert campaign["consumed"] == 5_000 and ledger["explained"] is True
