"""Customer merges over the real broker and store: the duplicate's wallet moves to the
survivor (coupons keep their ids and states), the duplicate's paid orders make the survivor
a returning customer, a late order of the duplicate counts for the survivor, and an unmerge
moves back exactly what came over."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.coupon.store.customers import CUSTOMER_ORDERS
from services.coupon.store.merges import MERGES
from tests.coupon.channels_support import pay_an_order, publish
from tests.coupon.support import Service, batch_spec, claim, ok, running_batches
from tests.support.merges import merged, unmerged
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"consumer_groups": {"coupon.orders", "coupon.customers"}}


def customer() -> str:
    return f"cus_{uuid.uuid4().hex[:10]}"


async def wallet(api: httpx.AsyncClient, customer_id: str) -> set[str]:
    page = await ok(api.get(f"/customers/{customer_id}/coupons"))
    return {c["id"] for c in page["items"]}


async def paid_orders(service: Service, tenant: str, customer_id: str) -> int:
    doc = await service.db[CUSTOMER_ORDERS].find_one({"_id": f"{tenant}:{customer_id}"})
    return int(doc["paid_orders"]) if doc else 0


async def test_a_merge_moves_the_wallet_and_the_order_history_and_an_unmerge_moves_them_back(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    ids = await running_batches(
        api, batch_spec("gift", per_customer_limit=2), batch_spec("newbies", audience="first_order")
    )
    survivor, duplicate = customer(), customer()
    kept = (await ok(claim(api, ids["gift"], survivor), 201))["id"]
    moving = {(await ok(claim(api, ids["gift"], duplicate), 201))["id"] for _ in range(2)}
    await pay_an_order(service, tenant, duplicate)
    await eventually(lambda: paid_orders(service, tenant, duplicate), until=lambda n: n == 1)

    merge = merged(survivor, duplicate)
    await publish(service, tenant, merge)
    await eventually(lambda: wallet(api, survivor), until=lambda w: w == {kept, *moving})
    assert await wallet(api, duplicate) == set()
    # The duplicate's order makes the survivor a returning customer.
    refused = await claim(api, ids["newbies"], survivor)
    assert refused.status_code == 409 and refused.json()["code"] == "not_new_customer"

    await publish(service, tenant, unmerged(merge))
    await eventually(lambda: wallet(api, duplicate), until=lambda w: w == moving)
    assert await wallet(api, survivor) == {kept}
    assert (
        await paid_orders(service, tenant, survivor),
        await paid_orders(service, tenant, duplicate),
    ) == (0, 1)
    await ok(claim(api, ids["newbies"], survivor), 201)


async def test_a_duplicate_s_order_read_after_its_merge_counts_for_the_survivor(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    """A merge is keyed by its survivor and an order by its customer: the order paid just
    before the merge may be read after it."""
    survivor, duplicate = customer(), customer()
    await publish(service, tenant, merged(survivor, duplicate))
    await eventually(lambda: service.db[MERGES].find_one({"merged_id": duplicate}))
    await pay_an_order(service, tenant, duplicate)
    await eventually(lambda: paid_orders(service, tenant, survivor), until=lambda n: n == 1)
    assert await paid_orders(service, tenant, duplicate) == 0
