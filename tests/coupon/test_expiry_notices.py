"""Coupons about to expire: the coupon service announces each available coupon whose
validity ends within the notice window exactly once (`coupon.expiry_noticed.v1`, read back
from the broker), never one ending later or one already used; many sweeps racing (the
worker and direct calls) still announce each once; one replica holds the sweep's lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from contracts import Topic
from servicekit.clock import utcnow
from services.coupon.service.expiry_notices import notice_due
from services.coupon.store.coupons import COUPONS
from services.coupon.store.expiry_notices import LEASE_ID, LEASES, ExpiryNoticeStore
from tests.coupon.support import Service, batch_spec, claim, iso, now, running_batches
from tests.support.events import published
from tests.support.waiting import eventually

NOTICED = "coupon.expiry_noticed.v1"


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"expiry_notice_hours": 24, "expiry_notice_sweep_seconds": 0.3}


def ending_in(key: str, hours: float) -> dict[str, Any]:
    return batch_spec(
        key,
        claim_until=iso(now() + timedelta(hours=hours / 2)),
        validity={
            "valid_from": iso(now() - timedelta(hours=1)),
            "valid_until": iso(now() + timedelta(hours=hours)),
        },
    )


async def notices(service: Service, tenant: str) -> list[Any]:
    found = await published(
        service.settings.kafka_bootstrap_servers, tenant=tenant, topic=Topic.COUPON
    )
    return [e for e in found if e.type == NOTICED]


async def test_each_coupon_ending_soon_is_announced_once(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    batches = await running_batches(api, ending_in("soon", 10), ending_in("later", 24 * 5))
    soon = [f"cus_soon_{n}" for n in range(12)]
    later = [f"cus_later_{n}" for n in range(3)]
    for customer in soon:
        assert (await claim(api, batches["soon"], customer)).status_code == 201
    for customer in later:
        assert (await claim(api, batches["later"], customer)).status_code == 201
    # A coupon used before it came near its end is never announced: one of the later batch,
    # used, then (as test data) moved to end soon too.
    used = await service.db[COUPONS].find_one_and_update(
        {"tenant": tenant, "customer_id": later[0]},
        {"$set": {"state": "used", "valid_until": now() + timedelta(hours=10)}},
    )
    # The worker, and several sweeps started here, race over the same coupons.
    window = timedelta(hours=24)
    counted = await asyncio.gather(
        *(notice_due(service.runtime.uow, utcnow(), window, 4) for _ in range(6))
    )

    found = await eventually(
        lambda: notices(service, tenant), until=lambda found: len(found) >= len(soon)
    )
    by_coupon = Counter(e.data["coupon_id"] for e in found)
    assert set(by_coupon.values()) == {1}, by_coupon
    assert sorted(e.data["customer_id"] for e in found) == sorted(soon)
    assert used["_id"] not in by_coupon
    assert sum(counted) <= len(soon)
    sample = found[0].data
    assert sample["batch_id"] == batches["soon"] and sample["face_value"] == 1_000
    marked = await service.db[COUPONS].count_documents(
        {"tenant": tenant, "expiry_noticed_at": {"$exists": True}}
    )
    assert marked == len(soon)
    # Later rounds add nothing: one here, and the worker's next (it renews its lease).
    assert await notice_due(service.runtime.uow, utcnow(), window, 4) == 0
    lease = service.db[LEASES]
    renewed = (await lease.find_one({"_id": LEASE_ID}))["until"]
    await eventually(
        lambda: lease.find_one({"_id": LEASE_ID}), until=lambda doc: doc["until"] > renewed
    )
    assert len(await notices(service, tenant)) == len(found)


async def test_one_replica_holds_the_sweep_lease_until_it_lapses(service: Service) -> None:
    store = ExpiryNoticeStore(service.db)
    at, ttl = utcnow() + timedelta(days=1), timedelta(seconds=30)  # past the worker's own lease

    held = await asyncio.gather(*(store.hold_lease(f"replica-{n}", at, ttl) for n in range(8)))

    assert held.count(True) == 1
    holder = f"replica-{held.index(True)}"
    assert await store.hold_lease(holder, at + timedelta(seconds=10), ttl)  # renewed
    assert not await store.hold_lease("replica-x", at + timedelta(seconds=20), ttl)
    assert await store.hold_lease("replica-x", at + timedelta(seconds=41), ttl)  # lapsed
    await service.db[LEASES].delete_one({"_id": LEASE_ID})  # the worker may sweep again
