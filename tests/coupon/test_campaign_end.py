"""When a campaign ends, its reservation keeps only what its coupons still usable may cost,
and lets each coupon's part go once the coupon can cost nothing more: uses and refunds
after the end move that part with the reservation, every release is a ledger entry, a
release happens once however many sweepers run, and when the last coupon is done the
campaign's reservation is zero."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.coupon.service.holds import release_due_holds
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.holds import HoldStore
from tests.coupon.support import Service, batch_spec, claim, ok, running_batches
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {
        "lock_seconds": 2,
        "lock_sweep_seconds": 0.2,
        "hold_bucket_seconds": 1,
        "hold_sweep_seconds": 0.2,
        "consumer_groups": set(),  # no order events here: skip the consumers' start
    }


def window(seconds: int) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(seconds=seconds)).isoformat(),
    }


ORDER_LINES = [
    {"line_id": "1", "product_id": "p-1", "price": 8_000, "quantity": 1},
    {"line_id": "2", "product_id": "p-2", "price": 4_000, "quantity": 1},
]


async def use(api: httpx.AsyncClient, coupon: dict, order_id: str) -> None:
    body = {
        "customer_id": coupon["customer_id"],
        "order": {"order_id": order_id, "lines": ORDER_LINES},
    }
    await ok(api.post(f"/coupons/{coupon['id']}/lock", json=body))
    await ok(api.post(f"/orders/{order_id}/confirm"))


async def test_an_ended_campaign_releases_each_coupons_part_as_it_expires_down_to_zero(
    api: httpx.AsyncClient, service: Service
) -> None:
    ids = await running_batches(
        api,
        batch_spec("a", stock=10, validity=window(5)),
        batch_spec("b", stock=10, validity=window(8)),
    )
    a = {c: await ok(claim(api, ids["a"], c), 201) for c in ("cus_1", "cus_2", "cus_3")}
    for c in ("cus_1", "cus_4"):
        await ok(claim(api, ids["b"], c), 201)
    await use(api, a["cus_1"], "o-1")
    campaign_id = a["cus_1"]["campaign_id"]

    ended = await ok(api.post(f"/campaigns/{campaign_id}/end"))
    # Held: a's two unused coupons and b's two (10 each); a's used coupon could come back
    # whole by a refund, but then its discount comes back with it: nothing more to hold.
    assert (ended["reserved"], ended["consumed"], ended["released"]) == (4_000, 1_000, 15_000)

    await use(api, a["cus_2"], "o-2")  # used after the end: from its hold
    refund = {"refund_id": "r-1", "lines": [{"line_id": "2", "quantity": 1}]}
    part = await ok(api.post("/orders/o-1/refund", json=refund))
    assert part["given_back"] == 333  # back into the coupon's hold: it may still return
    after_use = await ok(api.get(f"/campaigns/{campaign_id}"))
    assert (after_use["reserved"], after_use["consumed"]) == (3_333, 1_667)

    async def campaign() -> dict:
        return await ok(api.get(f"/campaigns/{campaign_id}"))

    # a's coupons expire first (5 s, plus the 2 s lock time): their part goes, b's stays.
    await eventually(campaign, until=lambda c: c["reserved"] == 2_000, within=20)
    # Sweepers racing each other and the worker release nothing twice.
    runtime = service.runtime
    stores = (HoldStore(runtime.db), BudgetStore(runtime.db), CampaignStore(runtime.db))
    await eventually(campaign, until=lambda c: c["reserved"] == 0, within=20)
    again = await asyncio.gather(*(release_due_holds(runtime.uow, *stores) for _ in range(4)))
    assert again == [0, 0, 0, 0]
    final = await campaign()
    assert (final["reserved"], final["consumed"], final["released"]) == (0, 1_667, 18_333)
    ledger = await ok(api.get(f"/budgets/{final['budget_id']}/ledger"))
    releases = [e["amount"] for e in ledger["entries"] if e["movement"] == "release"]
    assert releases == [15_000, 1_333, 2_000]
    assert ledger["explained"] is True
    assert ledger["budget"]["reserved"] == 0 and ledger["budget"]["consumed"] == 1_667
    assert await runtime.db["reservation_holds"].count_documents({"campaign_id": campaign_id}) == 0


async def test_sweepers_racing_over_due_holds_release_them_once(
    api: httpx.AsyncClient, service: Service
) -> None:
    """Four sweepers at once over due holds of one campaign: one ledger entry, once."""
    ids = await running_batches(api, batch_spec("a", stock=5, validity=window(2)))
    for c in ("cus_1", "cus_2"):
        await ok(claim(api, ids["a"], c), 201)
    campaign_id = (await ok(api.get(f"/batches/{ids['a']}")))["batch"]["campaign_id"]
    ended = await ok(api.post(f"/campaigns/{campaign_id}/end"))
    assert ended["reserved"] == 2_000
    runtime = service.runtime
    stores = (HoldStore(runtime.db), BudgetStore(runtime.db), CampaignStore(runtime.db))
    later = datetime.now(UTC) + timedelta(seconds=60)
    released = await asyncio.gather(
        *(release_due_holds(runtime.uow, *stores, now=later) for _ in range(4))
    )
    final = await ok(api.get(f"/campaigns/{campaign_id}"))
    assert final["reserved"] == 0
    ledger = await ok(api.get(f"/budgets/{final['budget_id']}/ledger"))
    releases = [e["amount"] for e in ledger["entries"] if e["movement"] == "release"]
    assert releases == [3_000, 2_000] and ledger["explained"] is True
    assert sum(released) in (0, 2_000)  # the worker may have taken it first
