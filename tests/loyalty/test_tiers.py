"""Tiers from order events over the real broker: a paid order's growth value upgrades at
once (and the new tier's multiplier applies to the next order), a refund takes growth
back without downgrading, the sweep warns ahead of the evaluation and then downgrades;
every change is recorded and published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts import Topic
from services.loyalty.service.tiers import TierService
from tests.loyalty.support import Service, customer, get, paid, points, publish, refunded
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SCHEME = {
    "tiers": [
        {"tier_id": "silver", "name": "Silver", "threshold": 0},
        {
            "tier_id": "gold",
            "name": "Gold",
            "threshold": 1_000,
            "points_multiplier": 200,
            "benefits": ["free-shipping"],
        },
    ],
    "growth_basis": "spend",
    "window_days": 30,
    "retention_days": 60,
    "warning_days": 10,
}


async def tier_of(api: httpx.AsyncClient, cid: str, tier_id: str, **more: int) -> dict:
    def matches(view: dict) -> bool:
        return view["tier_id"] == tier_id and all(view[k] == v for k, v in more.items())

    return await eventually(lambda: get(api, f"/customers/{cid}/tier"), until=matches)


async def test_growth_upgrades_at_once_and_the_sweep_warns_then_downgrades(
    api: httpx.AsyncClient, producer: AIOKafkaProducer, tenant: str, service: Service
) -> None:
    assert (await api.put("/tier-scheme", json=SCHEME)).status_code == 200
    cid = customer()
    await publish(producer, tenant, paid(cid, "SO-1", ("L1", 60_000)))
    view = await tier_of(api, cid, "silver", growth=600)
    assert (view["next_tier_id"], view["growth_to_next"]) == ("gold", 400)

    await publish(producer, tenant, paid(cid, "SO-2", ("L1", 50_000)))
    view = await tier_of(api, cid, "gold", growth=1_100)
    assert view["benefits"] == ["free-shipping"]
    # Gold earns double from the next order on.
    await publish(producer, tenant, paid(cid, "SO-3", ("L1", 10_000)))
    await eventually(lambda: points(api, cid), until=lambda a: a["balance"] == 600 + 500 + 200)

    # A refund takes growth back but does not downgrade before the evaluation.
    await publish(producer, tenant, refunded(cid, "SO-2", "R1", ("L1", 50_000), full=True))
    await tier_of(api, cid, "gold", growth=700)

    sweep = TierService(service.runtime.uow)
    now = datetime.now(UTC)
    await sweep.evaluate_due(now + timedelta(days=55))  # the warning, inside 10 days before
    await sweep.evaluate_due(now + timedelta(days=61))  # the evaluation: window growth is 0
    await tier_of(api, cid, "silver")
    changes = await get(api, f"/customers/{cid}/tier/changes")
    assert [(c["to_tier"], c["direction"]) for c in changes] == [
        ("silver", "down"),
        ("gold", "up"),
        ("silver", "up"),
    ]

    def seen(envelopes: list) -> list:
        return [e for e in envelopes if e.type.startswith("loyalty.tier")]

    events = await eventually(
        lambda: _tier_events(service, tenant), until=lambda found: len(found) == 4
    )
    warned = [e for e in events if e.type == "loyalty.tier_downgrade_warned.v1"]
    # By the evaluation day every order has left the 30-day window: all 1,000 are needed.
    assert len(warned) == 1 and warned[0].data["needed"] == 1_000


async def _tier_events(service: Service, tenant: str) -> list:
    envelopes = await published(service.bootstrap, tenant=tenant, topic=Topic.LOYALTY)
    return [e for e in envelopes if e.type.startswith("loyalty.tier")]
