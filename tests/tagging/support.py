"""What the tagging tests share: the running service, test data, polling helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts import Envelope, Event, Topic
from contracts.customer import CustomerRegistered, PurchaseStatsChanged
from services.tagging.settings import TaggingSettings
from services.tagging.store.profiles import PROFILES
from tests.support.events import published
from tests.support.running import RunningService
from tests.support.waiting import eventually

FINISHED = {"succeeded", "failed", "cancelled"}


#: The service one test module runs on a real socket.
Service = RunningService[TaggingSettings]


def customer_id() -> str:
    return f"cus_{uuid.uuid4().hex}"


async def known_customers(service: Service, tenant: str, count: int = 1) -> list[str]:
    """Customers in tagging's read model, as `customer.registered.v1` would leave them."""
    ids = [customer_id() for _ in range(count)]
    docs = [
        {
            "_id": c,
            "tenant": tenant,
            "display_name": "Li Lei",
            "source_channel": "store",
            "lifecycle_stage": "customer",
            "registered_at": datetime.now(UTC),
            "active": True,
            "tags": [],
        }
        for c in ids
    ]
    await service.db[PROFILES].insert_many(docs)
    return ids


async def category(api: httpx.AsyncClient, category_id: str = "value") -> dict[str, Any]:
    response = await api.post("/tag-categories", json={"category_id": category_id, "name": "V"})
    assert response.status_code == 201, response.text
    return response.json()


async def tag(api: httpx.AsyncClient, tag_id: str = "vip", **fields: Any) -> dict[str, Any]:
    """A tag in category `value` (created when missing)."""
    if (await api.get("/tag-categories")).json() == []:
        await category(api)
    body = {"tag_id": tag_id, "name": tag_id.upper(), "category": "value", **fields}
    response = await api.post("/tags", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def events(service: Service, tenant: str, type_: str | None = None) -> list[Envelope]:
    found = await published(service.bootstrap, tenant=tenant, topic=Topic.TAGGING)
    return [e for e in found if type_ is None or e.type == type_]


async def events_settled(service: Service, tenant: str, type_: str, count: int) -> list[Envelope]:
    """The events of `type_` once `count` of them are on the topic."""

    async def probe() -> list[Envelope]:
        return await events(service, tenant, type_)

    return await eventually(probe, until=lambda found: len(found) >= count, within=30)


async def finished(api: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        response = await api.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    return await eventually(poll, until=lambda job: job["state"] in FINISHED, within=120)


async def publish(service: Service, tenant: str, *events_: Event) -> None:
    """Send events as the customer service does: an envelope keyed by the customer."""
    for event in events_:
        subject = getattr(event, "customer_id", None) or event.survivor_id
        envelope = Envelope(
            type=event.type,
            source="/services/customer",
            subject=subject,
            tenant=tenant,
            data=event.model_dump(mode="json"),
        )
        await service.runtime.producer.send_and_wait(
            str(Topic.CUSTOMER), envelope.to_bytes(), key=subject.encode()
        )


def registered(cid: str) -> CustomerRegistered:
    return CustomerRegistered(
        customer_id=cid,
        display_name="Li",
        source_channel="store",
        lifecycle_stage="customer",
        registered_at=datetime.now(UTC),
    )


def spent(cid: str, total: int, last: datetime | None = None) -> PurchaseStatsChanged:
    last = last or datetime.now(UTC)
    return PurchaseStatsChanged(
        customer_id=cid,
        order_count=2,
        total_amount=total,
        refunded_amount=0,
        first_purchase_at=last,
        last_purchase_at=last,
        changed_at=datetime.now(UTC),
    )
