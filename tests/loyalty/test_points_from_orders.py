"""Points from order events over the real broker: a paid order earns line by line (with
category multipliers and the first-order bonus), a partial refund takes back exactly the
refunded lines' points, a refund after the points were spent leaves debt that the next
order pays off, held points are released when the return window closes, a voided order
gives everything back, a redelivered event changes nothing, and the birthday bonus
comes once a year."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from contracts.customer import CustomerErased, CustomerProfileChanged, OrderCancelled
from services.loyalty.service.points import PointsService
from tests.loyalty.support import (
    Service,
    ago,
    customer,
    entries,
    paid,
    points,
    post,
    publish,
    refunded,
    set_rule,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def balance_is(api, customer_id: str, expected: int, **more: int) -> dict:
    def matches(account: dict) -> bool:
        return account["balance"] == expected and all(account[k] == v for k, v in more.items())

    return await eventually(lambda: points(api, customer_id), until=matches)


async def test_a_paid_order_earns_line_by_line_and_a_partial_refund_takes_back_its_lines(
    api, producer: AIOKafkaProducer, tenant: str
) -> None:
    await set_rule(api, points_per_unit=1, category_multipliers={"tea": 200}, first_order_bonus=50)
    cid = customer()
    order = paid(cid, "SO-1", ("L1", 10_000, "tea"), ("L2", 5_000), first_order=True)
    await publish(producer, tenant, order)
    # L1: 100 yuan x 2 = 200; L2: 50; bonus 50.
    await balance_is(api, cid, 300)

    await publish(producer, tenant, refunded(cid, "SO-1", "R1", ("L1", 5_000)))
    await balance_is(api, cid, 200)
    reversal = (await entries(api, cid))[0]
    assert reversal["kind"] == "reversed" and reversal["points"] == -100
    assert reversal["order_id"] == "SO-1" and reversal["refund_id"] == "R1"
    assert reversal["line_ids"] == ["L1"]

    # The rest of L1 and all of L2: the order is fully refunded, the bonus goes too.
    last = refunded(cid, "SO-1", "R2", ("L1", 5_000), ("L2", 5_000), full=True)
    await publish(producer, tenant, last)
    await balance_is(api, cid, 0)


async def test_a_refund_after_spending_leaves_debt_the_next_order_pays(
    api, producer: AIOKafkaProducer, tenant: str
) -> None:
    cid = customer()
    await publish(producer, tenant, paid(cid, "SO-1", ("L1", 20_000)))
    await balance_is(api, cid, 200)
    spent = await post(
        api, f"/customers/{cid}/points/redemptions", {"points": 150, "reward": "mug"}
    )
    assert spent.status_code == 201, spent.text

    await publish(producer, tenant, refunded(cid, "SO-1", "R1", ("L1", 20_000), full=True))
    account = await balance_is(api, cid, -150, debt=150)
    assert account["lots"] == []
    refused = await post(
        api, f"/customers/{cid}/points/redemptions", {"points": 1, "reward": "pen"}
    )
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_points"

    await publish(producer, tenant, paid(cid, "SO-2", ("L1", 20_000)))
    await balance_is(api, cid, 50, debt=0)
    ledger = await entries(api, cid)
    assert sum(e["points"] for e in ledger) == 50


async def test_held_points_are_released_when_the_return_window_closes(
    api, producer: AIOKafkaProducer, tenant: str, service: Service
) -> None:
    await set_rule(api, hold_days=7)
    cid = customer()
    await publish(producer, tenant, paid(cid, "SO-1", ("L1", 10_000), ("L2", 3_000)))
    await balance_is(api, cid, 0, pending=130)

    # A refund inside the window takes the held points back, not the balance.
    await publish(producer, tenant, refunded(cid, "SO-1", "R1", ("L2", 3_000)))
    await balance_is(api, cid, 0, pending=100)

    sweep = PointsService(service.runtime.uow)
    assert await sweep.mature_due(ago(days=-8)) >= 1
    account = await balance_is(api, cid, 100, pending=0)
    assert len(account["lots"]) == 1


async def test_a_voided_order_gives_back_all_it_earned_and_a_redelivery_changes_nothing(
    api, producer: AIOKafkaProducer, tenant: str
) -> None:
    cid = customer()
    order = paid(cid, "SO-1", ("L1", 10_000), ("L2", 10_000))
    await publish(producer, tenant, order)
    await balance_is(api, cid, 200)
    await publish(producer, tenant, refunded(cid, "SO-1", "R1", ("L2", 10_000)))
    await balance_is(api, cid, 100)

    await publish(
        producer,
        tenant,
        OrderCancelled(customer_id=cid, order_id="SO-1", was_paid=True, cancelled_at=ago()),
    )
    await balance_is(api, cid, 0)
    # The same order paid again under a new event id earns nothing more.
    await publish(producer, tenant, order)
    await publish(producer, tenant, paid(cid, "SO-2", ("L1", 1_000)))
    await balance_is(api, cid, 10)
    kinds = [e["kind"] for e in await entries(api, cid)]
    assert kinds == ["earned", "reversed", "reversed", "earned"]  # newest first


async def test_the_birthday_bonus_comes_once_a_year_in_the_birthday_month(
    api, producer: AIOKafkaProducer, tenant: str, service: Service
) -> None:
    await set_rule(api, birthday_bonus=88, timezone="UTC")
    cid = customer()
    now = ago()
    profile = CustomerProfileChanged(
        customer_id=cid,
        changed_fields=["birthday"],
        changed_by="member",
        changed_at=now,
        attributes={"birthday_month": now.month},
    )
    await publish(producer, tenant, profile, paid(cid, "SO-1", ("L1", 1_000), paid_at=now))
    await balance_is(api, cid, 10 + 88)
    await publish(producer, tenant, paid(cid, "SO-2", ("L1", 1_000), paid_at=now))
    await balance_is(api, cid, 10 + 88 + 10)

    # An erasure forgets the birthday month (the ledger stays: it names no one but by id).
    await publish(producer, tenant, CustomerErased(customer_id=cid, erased_at=now))
    accounts = service.db["point_accounts"]
    await eventually(
        lambda: accounts.find_one({"_id": f"{tenant}:{cid}"}),
        until=lambda doc: doc["birthday_month"] is None,
    )


async def test_orders_earning_while_redemptions_run_lose_no_update(
    api, producer: AIOKafkaProducer, tenant: str
) -> None:
    """The consumer and 15 HTTP redemptions change one account at once: every change lands
    (versioned saves run a lost race again), and the balance is the sum of the ledger."""
    cid = customer()
    await publish(producer, tenant, paid(cid, "SO-0", ("L1", 10_000)))
    await balance_is(api, cid, 100)
    orders = [paid(cid, f"SO-{i}", ("L1", 1_000)) for i in range(1, 11)]
    redeem = f"/customers/{cid}/points/redemptions"
    answers, _ = await asyncio.gather(
        asyncio.gather(*(post(api, redeem, {"points": 5, "reward": "pen"}) for _ in range(15))),
        publish(producer, tenant, *orders),
    )
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    account = await balance_is(api, cid, 100 + 10 * 10 - 15 * 5)
    ledger = await entries(api, cid)
    assert sum(e["points"] for e in ledger) == account["balance"]
    assert [e["kind"] for e in ledger].count("earned") == 11


async def test_a_points_multiplier_benefit_the_customer_holds_multiplies_earning(
    api, producer: AIOKafkaProducer, tenant: str
) -> None:
    benefit = {"benefit_id": "triple", "name": "Triple points", "kind": "points_multiplier"}
    response = await api.put("/benefits/triple", json={**benefit, "value": 300})
    assert response.status_code == 200, response.text
    cid = customer()
    grant = {"benefit_id": "triple", "valid_days": 30, "reason": "launch week"}
    assert (await post(api, f"/customers/{cid}/benefits", grant)).status_code == 201
    await publish(producer, tenant, paid(cid, "SO-1", ("L1", 1_000)))
    await balance_is(api, cid, 30)
