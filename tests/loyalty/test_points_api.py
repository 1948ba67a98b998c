"""The points API over real HTTP on the real store and broker: adjustments with reason
and operator, redemption first-expiring-first, idempotent by key (also 10 copies at once),
20 concurrent redemptions never overdraw, the payment cap, expiry and reminders by the
sweep with their events published, and bad input refused with problem+json, changing
nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts import Topic
from servicekit.errors import PROBLEM_JSON
from services.loyalty.service.points import PointsService
from tests.loyalty.support import Service, customer, entries, key, points, post, set_rule
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def adjust(api: httpx.AsyncClient, cid: str, amount: int, **extra: str) -> httpx.Response:
    body = {"points": amount, "reason": "goodwill"}
    return await post(api, f"/customers/{cid}/points/adjustments", body, **extra)


async def redeem(api: httpx.AsyncClient, cid: str, amount: int, **extra: str) -> httpx.Response:
    body = {"points": amount, "reward": "gift-1"}
    return await post(api, f"/customers/{cid}/points/redemptions", body, **extra)


async def test_an_adjustment_records_reason_and_operator_and_a_repeat_posts_once(
    api: httpx.AsyncClient,
) -> None:
    cid = customer()
    same = key()
    first = await adjust(api, cid, 120, idempotency_key=same)
    assert first.status_code == 201, first.text
    entry = first.json()["entry"]
    assert entry["reason"] == "goodwill" and entry["operator"] == "ops-1"
    assert entry["kind"] == "adjusted" and first.json()["account"]["balance"] == 120
    again = await adjust(api, cid, 120, idempotency_key=same)
    assert again.status_code == 201 and again.json()["entry"]["entry_id"] == entry["entry_id"]
    assert (await points(api, cid))["balance"] == 120

    down = await adjust(api, cid, -200)
    assert down.status_code == 422 and down.json()["code"] == "insufficient_points"
    assert (await adjust(api, cid, -20)).json()["account"]["balance"] == 100


async def test_redemption_takes_the_first_expiring_lot_first(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    cid = customer()
    await set_rule(api, validity_days=30)
    assert (await adjust(api, cid, 100)).status_code == 201
    await set_rule(api, validity_days=10)
    assert (await adjust(api, cid, 100)).status_code == 201
    response = await redeem(api, cid, 150)
    assert response.status_code == 201, response.text
    lots = response.json()["account"]["lots"]
    assert [lot["remaining"] for lot in lots] == [50]
    expires = datetime.fromisoformat(lots[0]["expires_at"])
    assert expires > datetime.now(UTC) + timedelta(days=29)


async def test_ten_copies_of_one_redemption_at_once_take_the_points_once(
    api: httpx.AsyncClient,
) -> None:
    cid = customer()
    await adjust(api, cid, 100)
    same = key()
    answers = await asyncio.gather(*(redeem(api, cid, 30, idempotency_key=same) for _ in range(10)))
    assert {a.status_code for a in answers} <= {200, 201, 409}, [a.text for a in answers]
    assert (await points(api, cid))["balance"] == 70
    assert [e["kind"] for e in await entries(api, cid)].count("spent") == 1


async def test_twenty_concurrent_redemptions_never_overdraw(api: httpx.AsyncClient) -> None:
    cid = customer()
    await adjust(api, cid, 100)
    answers = await asyncio.gather(
        *(redeem(api, cid, 10) for _ in range(12)), *(redeem(api, cid, 7) for _ in range(8))
    )
    taken = sum(json.loads(a.request.content)["points"] for a in answers if a.status_code == 201)
    refused = [a for a in answers if a.status_code != 201]
    assert all(a.json()["code"] == "insufficient_points" for a in refused), refused
    account = await points(api, cid)
    assert account["balance"] == 100 - taken >= 0
    assert account["balance"] < 7  # nothing a refused caller wanted was left over
    ledger = await entries(api, cid)
    assert sum(e["points"] for e in ledger) == account["balance"]


async def test_paying_with_points_is_capped_per_order_and_a_refund_gives_them_back(
    api: httpx.AsyncClient,
) -> None:
    cid = customer()
    await set_rule(api, point_value=10, max_payment_share=20, max_payment_points=500)
    await adjust(api, cid, 1_000)
    path = f"/customers/{cid}/points/payments"
    # 20% of 10,000 分 is 2,000 分: 200 points at 10 分 each.
    over = await post(api, path, {"order_id": "SO-1", "order_amount": 10_000, "points": 201})
    assert over.status_code == 422 and over.json()["max_points"] == 200
    ok = await post(api, path, {"order_id": "SO-1", "order_amount": 10_000, "points": 200})
    assert ok.status_code == 201, ok.text
    again = await post(api, path, {"order_id": "SO-1", "order_amount": 10_000, "points": 200})
    assert again.status_code == 200 and again.json()["account"]["balance"] == 800
    other = await post(api, path, {"order_id": "SO-1", "order_amount": 10_000, "points": 100})
    assert other.status_code == 409 and other.json()["code"] == "already_posted"
    big = {"order_id": "SO-2", "order_amount": 1_000_000, "points": 501}
    capped = await post(api, path, big)
    assert capped.status_code == 422 and capped.json()["max_points"] == 500

    refund = f"{path}/SO-1/refund"
    back = await api.post(refund)
    assert back.status_code == 201 and back.json()["account"]["balance"] == 1_000
    assert back.json()["entry"]["kind"] == "restored"
    assert (await api.post(refund)).json()["account"]["balance"] == 1_000
    assert (await api.post(f"{path}/SO-9/refund")).status_code == 404


async def test_the_sweep_reminds_ahead_of_expiry_then_expires_the_lot(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    cid = customer()
    await set_rule(api, validity_days=40, remind_days_ahead=10)
    await adjust(api, cid, 100)
    await redeem(api, cid, 30)
    sweep = PointsService(service.runtime.uow)
    now = datetime.now(UTC)
    await sweep.mature_due(now + timedelta(days=20))  # nothing due yet
    await sweep.mature_due(now + timedelta(days=35))
    await sweep.mature_due(now + timedelta(days=36))  # reminded once only
    await sweep.mature_due(now + timedelta(days=41))
    ledger = await entries(api, cid)
    assert ledger[0]["kind"] == "expired" and ledger[0]["points"] == -70
    assert (await points(api, cid))["balance"] == 0

    types = await eventually(
        lambda: _types(service, tenant),
        until=lambda seen: "loyalty.points_expired.v1" in seen,
    )
    assert types.count("loyalty.points_expiry_reminded.v1") == 1
    assert types.index("loyalty.points_expiry_reminded.v1") < types.index(
        "loyalty.points_expired.v1"
    )


async def _types(service: Service, tenant: str) -> list[str]:
    return [e.type for e in await published(service.bootstrap, tenant=tenant, topic=Topic.LOYALTY)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points": {"$gt": 0}, "reason": "x"}, "points"),
        ({"points": 10, "reason": ""}, "reason"),
        ({"points": 10**10, "reason": "x"}, "points"),
        ({"points": 10, "reason": "x", "extra": 1}, "extra"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, body: dict, field: str
) -> None:
    cid = customer()
    response = await post(api, f"/customers/{cid}/points/adjustments", body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert field in {e["field"] for e in response.json()["errors"]}
    assert (await points(api, cid))["balance"] == 0


async def test_a_change_without_an_idempotency_key_or_with_a_bad_customer_is_refused(
    api: httpx.AsyncClient,
) -> None:
    cid = customer()
    missing = await api.post(f"/customers/{cid}/points/adjustments", json={"points": 1})
    assert missing.status_code == 422
    bad = await post(api, "/customers/nobody/points/adjustments", {"points": 1, "reason": "x"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM_JSON)
    rule = await api.put("/earning-rule", json={"timezone": "Mars/Olympus"})
    assert rule.status_code == 422 and rule.json()["errors"][0]["field"] == "timezone"


async def test_members_may_not_do_an_operator_s_work(api: httpx.AsyncClient) -> None:
    cid = customer()
    member = {"X-Actor-Id": "member-1", "X-Actor-Kind": "member", "Idempotency-Key": key()}
    body = {"points": 1_000, "reason": "generous"}
    path = f"/customers/{cid}/points/adjustments"
    refused = await api.post(path, json=body, headers=member)
    assert refused.status_code == 403 and refused.json()["code"] == "operator_only"
    rule = await api.put("/earning-rule", json={}, headers=member)
    assert rule.status_code == 403
    staff = {"X-Actor-Id": "ops-2", "X-Actor-Kind": "staff", "Idempotency-Key": key()}
    assert (await api.post(path, json=body, headers=staff)).status_code == 201
    assert (await points(api, cid))["balance"] == 1_000
