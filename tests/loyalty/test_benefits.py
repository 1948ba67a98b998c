"""Benefits over real HTTP: definitions, a card bundling counted and unlimited benefits,
purchase (idempotent by payment), renewal and expiry by the sweep, direct grants, tier
benefits, write-offs that never use more than there are under 12 concurrent callers, and
an operator's reversal (once)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest

from contracts import Topic
from services.loyalty.service.benefits import BenefitService
from tests.loyalty.support import Service, customer, get, key, post
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

WASH = {"benefit_id": "car-wash", "name": "Car wash", "kind": "service"}
DISCOUNT = {"benefit_id": "vip-95", "name": "5% off", "kind": "discount", "value": 95}
CARD = {
    "card_id": "wash-card",
    "name": "Wash card",
    "price": 9_900,
    "validity_days": 30,
    "benefits": [{"benefit_id": "car-wash", "uses": 3}, {"benefit_id": "vip-95"}],
}


async def define(api: httpx.AsyncClient) -> None:
    for benefit in (WASH, DISCOUNT):
        response = await api.put(f"/benefits/{benefit['benefit_id']}", json=benefit)
        assert response.status_code == 200, response.text
    assert (await api.put("/benefit-cards/wash-card", json=CARD)).status_code == 200


async def buy(api: httpx.AsyncClient, cid: str, payment: str = "PAY-1") -> httpx.Response:
    body = {"card_id": "wash-card", "payment_id": payment}
    return await api.post(f"/customers/{cid}/benefit-cards", json=body)


def wash_grant(holdings: dict) -> dict:
    return next(g for g in holdings["grants"] if g["benefit_id"] == "car-wash")


async def write_off(
    api: httpx.AsyncClient, cid: str, grant_id: str, **extra: str
) -> httpx.Response:
    path = f"/customers/{cid}/benefits/{grant_id}/write-offs"
    return await post(api, path, {"uses": 1, "reference": "store-7"}, **extra)


async def test_a_card_grants_its_benefits_and_write_offs_never_overuse(
    api: httpx.AsyncClient,
) -> None:
    await define(api)
    cid = customer()
    bought = await buy(api, cid)
    assert bought.status_code == 201, bought.text
    assert (await buy(api, cid)).json()["holding_id"] == bought.json()["holding_id"]
    held = await get(api, f"/customers/{cid}/benefits")
    assert len(held["grants"]) == 2 and len(held["cards"]) == 1
    grant = wash_grant(held)
    assert (grant["uses_left"], grant["expires_at"]) == (3, bought.json()["expires_at"])

    same = key()
    first = await write_off(api, cid, grant["grant_id"], idempotency_key=same)
    assert first.status_code == 201, first.text
    again = await write_off(api, cid, grant["grant_id"], idempotency_key=same)
    assert again.json()["write_off_id"] == first.json()["write_off_id"]

    answers = await asyncio.gather(*(write_off(api, cid, grant["grant_id"]) for _ in range(12)))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 2, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code != 201} == {"benefit_used_up"}
    assert wash_grant(await get(api, f"/customers/{cid}/benefits"))["uses_left"] == 0

    reversal = await api.post(
        f"/write-offs/{first.json()['write_off_id']}/reversal", json={"reason": "wrong car"}
    )
    assert reversal.status_code == 200 and reversal.json()["reversed_by"] == "ops-1"
    twice = await api.post(
        f"/write-offs/{first.json()['write_off_id']}/reversal", json={"reason": "again"}
    )
    assert twice.status_code == 409 and twice.json()["code"] == "already_reversed"
    assert wash_grant(await get(api, f"/customers/{cid}/benefits"))["uses_left"] == 1
    uses = await get(api, f"/customers/{cid}/benefits/{grant['grant_id']}/write-offs")
    assert len(uses) == 3 and sum(1 for u in uses if u["reversed_at"]) == 1


async def test_renewal_extends_the_card_and_adds_the_period_s_uses(api: httpx.AsyncClient) -> None:
    await define(api)
    cid = customer()
    holding = (await buy(api, cid)).json()
    path = f"/customers/{cid}/benefit-cards/{holding['holding_id']}/renewals"
    renewed = await api.post(path, json={"payment_id": "PAY-2"})
    assert renewed.status_code == 201, renewed.text
    before = datetime.fromisoformat(holding["expires_at"])
    after = datetime.fromisoformat(renewed.json()["expires_at"])
    assert (after - before).days == 30
    assert (await api.post(path, json={"payment_id": "PAY-2"})).status_code == 200
    grant = wash_grant(await get(api, f"/customers/{cid}/benefits"))
    assert (grant["uses_left"], grant["uses_total"]) == (6, 6)


async def test_direct_grants_and_tier_benefits_are_listed(api: httpx.AsyncClient) -> None:
    await define(api)
    scheme = {
        "tiers": [{"tier_id": "base", "name": "Base", "threshold": 0, "benefits": ["vip-95"]}]
    }
    assert (await api.put("/tier-scheme", json=scheme)).status_code == 200
    cid = customer()
    body = {"benefit_id": "car-wash", "uses": 1, "valid_days": 7, "reason": "complaint"}
    granted = await post(api, f"/customers/{cid}/benefits", body)
    assert granted.status_code == 201 and granted.json()["granted_by"] == "ops-1"
    held = await get(api, f"/customers/{cid}/benefits")
    assert [g["source"] for g in held["grants"]] == ["direct"]
    assert held["tier_benefits"] == []  # no growth yet: no tier


async def test_unknown_benefits_and_cards_are_refused(api: httpx.AsyncClient) -> None:
    await define(api)
    bad_card = {**CARD, "card_id": "x", "benefits": [{"benefit_id": "nope"}]}
    response = await api.put("/benefit-cards/x", json=bad_card)
    assert response.status_code == 422 and response.json()["missing"] == ["nope"]
    cid = customer()
    unknown = await api.post(
        f"/customers/{cid}/benefit-cards", json={"card_id": "none", "payment_id": "P"}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "card_not_found"
    body = {"benefit_id": "car-wash", "reason": "x"}
    other = await post(api, f"/customers/{cid}/benefits/gr_{'0' * 32}/write-offs", body)
    assert other.status_code == 422  # `benefit_id` and `reason` are not write-off fields


async def test_the_sweep_marks_an_unrenewed_card_expired_and_publishes_it_once(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    await define(api)
    cid = customer()
    holding = (await buy(api, cid)).json()
    sweep = BenefitService(service.runtime.uow)
    later = datetime.fromisoformat(holding["expires_at"]) + timedelta(seconds=1)
    assert await sweep.expire_due(later) >= 1
    await sweep.expire_due(later)  # nothing more for this card
    held = await get(api, f"/customers/{cid}/benefits")
    assert held["cards"][0]["expired"] is True
    assert wash_grant(held)["expires_at"] == holding["expires_at"]  # its grants end with it

    async def expiries() -> list:
        found = await published(service.bootstrap, tenant=tenant, topic=Topic.LOYALTY)
        return [e for e in found if e.type == "loyalty.benefit_card_expired.v1"]

    assert len(await eventually(expiries)) == 1
