"""Stored value over real HTTP: top-up with a bonus offer split into principal and bonus,
spends in the tenant's order, refunds of principal only, freeze and unfreeze, idempotent
by payment and order, and 30 concurrent spends of one balance never overdrawing it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.loyalty.support import customer, get, post

pytestmark = pytest.mark.integration


def base(cid: str) -> str:
    return f"/customers/{cid}/stored-value"


async def top_up(api: httpx.AsyncClient, cid: str, amount: int, payment: str) -> httpx.Response:
    return await api.post(f"{base(cid)}/top-ups", json={"amount": amount, "payment_id": payment})


async def spend(api: httpx.AsyncClient, cid: str, amount: int, order: str) -> httpx.Response:
    return await api.post(f"{base(cid)}/spends", json={"amount": amount, "order_id": order})


async def offers(api: httpx.AsyncClient, spend_order: str = "principal_first") -> None:
    scheme = {
        "offers": [
            {"min_amount": 50_000, "bonus": 3_000},
            {"min_amount": 100_000, "bonus": 10_000},
        ],
        "spend_order": spend_order,
    }
    assert (await api.put("/stored-value-scheme", json=scheme)).status_code == 200


async def test_a_top_up_gets_the_best_offer_and_a_spend_takes_principal_first(
    api: httpx.AsyncClient,
) -> None:
    await offers(api)
    cid = customer()
    first = await top_up(api, cid, 100_000, "PAY-1")
    assert first.status_code == 201, first.text
    assert first.json()["account"] == {
        "customer_id": cid,
        "principal": 100_000,
        "bonus": 10_000,
        "balance": 110_000,
        "frozen": False,
        "frozen_reason": None,
    }
    again = await top_up(api, cid, 100_000, "PAY-1")
    assert again.status_code == 200 and again.json()["account"]["balance"] == 110_000

    spent = (await spend(api, cid, 105_000, "SO-1")).json()
    assert (spent["entry"]["principal"], spent["entry"]["bonus"]) == (-100_000, -5_000)
    reversed_ = await api.post(f"{base(cid)}/spends/SO-1/reversal")
    assert reversed_.status_code == 201
    assert reversed_.json()["account"].items() >= {"principal": 100_000, "bonus": 10_000}.items()


async def test_bonus_first_when_the_tenant_says_so(api: httpx.AsyncClient) -> None:
    await offers(api, "bonus_first")
    cid = customer()
    await top_up(api, cid, 50_000, "PAY-1")
    entry = (await spend(api, cid, 5_000, "SO-1")).json()["entry"]
    assert (entry["principal"], entry["bonus"]) == (-2_000, -3_000)


async def test_a_refund_pays_out_principal_only_and_forfeits_the_bonus_with_the_last_of_it(
    api: httpx.AsyncClient,
) -> None:
    await offers(api)
    cid = customer()
    await top_up(api, cid, 50_000, "PAY-1")
    over = await post(api, f"{base(cid)}/refunds", {"amount": 50_001})
    assert over.status_code == 422 and over.json()["refundable"] == 50_000
    part = await post(api, f"{base(cid)}/refunds", {"amount": 20_000})
    assert part.json()["account"]["bonus"] == 3_000
    rest = await post(api, f"{base(cid)}/refunds", {"amount": 30_000})
    assert rest.json()["entry"].items() >= {"principal": -30_000, "bonus": -3_000}.items()
    assert rest.json()["account"]["balance"] == 0


async def test_a_frozen_account_neither_spends_nor_refunds(api: httpx.AsyncClient) -> None:
    cid = customer()
    await top_up(api, cid, 10_000, "PAY-1")
    frozen = await post(api, f"{base(cid)}/freeze", {"reason": "card reported lost"})
    assert frozen.status_code == 201 and frozen.json()["account"]["frozen"]
    refused = await spend(api, cid, 100, "SO-1")
    assert refused.status_code == 409 and refused.json()["code"] == "account_frozen"
    refund = await post(api, f"{base(cid)}/refunds", {"amount": 100})
    assert refund.status_code == 409
    twice = await post(api, f"{base(cid)}/freeze", {"reason": "again"})
    assert twice.status_code == 409 and twice.json()["code"] == "already_frozen"
    assert (await post(api, f"{base(cid)}/unfreeze", {"reason": "found"})).status_code == 201
    assert (await spend(api, cid, 100, "SO-1")).status_code == 201


async def test_thirty_concurrent_spends_never_overdraw_the_balance(api: httpx.AsyncClient) -> None:
    cid = customer()
    await top_up(api, cid, 1_000, "PAY-1")
    answers = await asyncio.gather(*(spend(api, cid, 100, f"SO-{i}") for i in range(30)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 10, [a.text for a in answers if a.status_code not in (201, 422)]
    assert {a.json()["code"] for a in answers if a.status_code != 201} == {"insufficient_balance"}
    account = await get(api, base(cid))
    assert account["balance"] == 0
    entries = (await get(api, f"{base(cid)}/entries?limit=100"))["items"]
    assert sum(e["principal"] + e["bonus"] for e in entries) == 0
    assert len(entries) == 11


async def test_the_same_order_spends_once_and_a_different_amount_under_it_is_refused(
    api: httpx.AsyncClient,
) -> None:
    cid = customer()
    await top_up(api, cid, 1_000, "PAY-1")
    answers = await asyncio.gather(*(spend(api, cid, 300, "SO-1") for _ in range(8)))
    assert sorted({a.status_code for a in answers}) in ([200, 201], [201])
    assert (await get(api, base(cid)))["balance"] == 700
    other = await spend(api, cid, 200, "SO-1")
    assert other.status_code == 409 and other.json()["code"] == "already_posted"
    bad = await api.post(f"{base(cid)}/spends", json={"amount": -5, "order_id": {"$ne": 1}})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"amount", "order_id"}
