"""Customer merges over the real broker: the duplicate's points (lots with their expiry
and source), stored value, growth value, grants and order earnings move to the survivor
(a later refund of the duplicate's order takes back from the survivor); an unmerge moves
back what is still there; both ledgers stay equal to their balances."""

from __future__ import annotations

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.loyalty.store.merges import MERGES
from tests.loyalty.support import (
    Service,
    customer,
    entries,
    get,
    paid,
    points,
    post,
    publish,
    refunded,
)
from tests.support.merges import merged, unmerged
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def balance_is(api: httpx.AsyncClient, cid: str, expected: int) -> dict:
    return await eventually(lambda: points(api, cid), until=lambda a: a["balance"] == expected)


async def test_a_merge_moves_the_duplicate_s_assets_and_an_unmerge_moves_them_back(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, tenant: str
) -> None:
    scheme = {
        "tiers": [
            {"tier_id": "silver", "name": "Silver", "threshold": 0},
            {"tier_id": "gold", "name": "Gold", "threshold": 120},
        ]
    }
    assert (await api.put("/tier-scheme", json=scheme)).status_code == 200
    survivor, duplicate = customer(), customer()
    await post(api, f"/customers/{survivor}/points/adjustments", {"points": 50, "reason": "x"})
    await publish(producer, tenant, paid(duplicate, "SO-D", ("L1", 10_000), ("L2", 5_000)))
    await balance_is(api, duplicate, 150)
    top_up = {"amount": 1_000, "payment_id": "PAY-D"}
    assert (await api.post(f"/customers/{duplicate}/stored-value/top-ups", json=top_up)).is_success
    benefit = {"benefit_id": "gift", "name": "Gift", "kind": "custom"}
    assert (await api.put("/benefits/gift", json=benefit)).status_code == 200
    grant = {"benefit_id": "gift", "uses": 1, "reason": "welcome"}
    assert (await post(api, f"/customers/{duplicate}/benefits", grant)).status_code == 201

    merge = merged(survivor, duplicate)
    await publish(producer, tenant, merge)
    await balance_is(api, survivor, 200)
    assert (await points(api, duplicate))["balance"] == 0
    assert (await get(api, f"/customers/{survivor}/stored-value"))["principal"] == 1_000
    assert (await get(api, f"/customers/{duplicate}/stored-value"))["balance"] == 0
    held = await get(api, f"/customers/{survivor}/benefits")
    assert [g["benefit_id"] for g in held["grants"]] == ["gift"]
    tier = await get(api, f"/customers/{survivor}/tier")
    assert (tier["tier_id"], tier["growth"]) == ("gold", 150)  # the duplicate's growth came

    # The duplicate's order now belongs to the survivor: its refund takes back from there.
    await publish(producer, tenant, refunded(survivor, "SO-D", "R1", ("L2", 5_000)))
    await balance_is(api, survivor, 150)

    await publish(producer, tenant, unmerged(merge))
    await balance_is(api, duplicate, 100)
    assert (await points(api, survivor))["balance"] == 50
    assert (await get(api, f"/customers/{duplicate}/stored-value"))["principal"] == 1_000
    held = await get(api, f"/customers/{duplicate}/benefits")
    assert [g["benefit_id"] for g in held["grants"]] == ["gift"]
    tier = await get(api, f"/customers/{survivor}/tier")
    assert (tier["tier_id"], tier["growth"]) == ("gold", 0)  # no downgrade before evaluation
    for cid in (survivor, duplicate):
        ledger = await entries(api, cid)
        assert sum(e["points"] for e in ledger) == (await points(api, cid))["balance"]


async def test_a_duplicate_s_order_arriving_after_its_merge_earns_for_the_survivor(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, tenant: str, service: Service
) -> None:
    """A merge is keyed by its survivor and an order by its customer: an order paid just
    before the merge may be read after it, and must not strand points on the duplicate."""
    survivor, duplicate = customer(), customer()
    await publish(producer, tenant, merged(survivor, duplicate))
    await eventually(lambda: service.db[MERGES].find_one({"merged_id": duplicate}))
    await publish(producer, tenant, paid(duplicate, "SO-LATE", ("L1", 10_000)))
    await balance_is(api, survivor, 100)
    assert (await points(api, duplicate))["balance"] == 0
    # Its refund finds the order with the survivor too.
    await publish(producer, tenant, refunded(duplicate, "SO-LATE", "R1", ("L1", 10_000)))
    await balance_is(api, survivor, 0)
