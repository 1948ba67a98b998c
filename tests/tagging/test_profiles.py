"""Tagging's read model of customers and the tenant's portrait, kept from customer events
published to Kafka. A merge is keyed by its survivor and a registration by its customer, so
they may arrive in either order: the portrait is the same both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.customer import CustomerErased
from services.tagging.store.profiles import MERGED
from tests.support.merges import merged, unmerged
from tests.support.waiting import eventually
from tests.tagging.support import Service, customer_id, publish, registered

NOW = datetime.now(UTC)


async def portrait_of(api: httpx.AsyncClient, customers: int) -> dict[str, Any]:
    """The portrait once it counts `customers`."""

    async def probe() -> dict[str, Any]:
        return (await api.get("/portrait")).json()

    found: dict[str, Any] = await eventually(probe, until=lambda p: p["customers"] == customers)
    return found


async def test_a_merge_before_the_duplicates_registration_still_leaves_one(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    survivor, duplicate, marker = customer_id(), customer_id(), customer_id()
    merge = merged(survivor, duplicate)
    await publish(service, tenant, registered(survivor), merge)
    await eventually(lambda: service.db[MERGED].find_one({"_id": duplicate}))
    await publish(service, tenant, registered(duplicate))
    # A customer counted after both: once the portrait has the survivor and the marker, a
    # wrongly counted duplicate would have made it three.
    await publish(service, tenant, registered(marker))
    await eventually(
        lambda: api.get(f"/customers/{duplicate}/profile"), until=lambda r: r.status_code == 200
    )
    await eventually(
        lambda: api.get(f"/customers/{marker}/profile"), until=lambda r: r.status_code == 200
    )
    portrait = await portrait_of(api, 2)
    assert portrait["by_lifecycle_stage"] == {"customer": 2}

    # Undoing the merge brings the duplicate back into the portrait.
    await publish(service, tenant, unmerged(merge))
    await portrait_of(api, 3)


async def test_a_merge_after_the_registration_takes_the_duplicate_out_and_erasure_forgets(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    survivor, duplicate = customer_id(), customer_id()
    await publish(service, tenant, registered(survivor), registered(duplicate))
    await portrait_of(api, 2)
    await publish(service, tenant, merged(survivor, duplicate))
    await portrait_of(api, 1)
    # Erasing the merged duplicate changes no count: it was already out.
    await publish(service, tenant, CustomerErased(customer_id=duplicate, erased_at=NOW))
    await eventually(
        lambda: api.get(f"/customers/{duplicate}/profile"), until=lambda r: r.status_code == 404
    )
    assert (await api.get("/portrait")).json()["customers"] == 1
