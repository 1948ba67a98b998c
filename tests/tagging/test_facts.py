"""The facts read model end to end: customer events published to Kafka become one facts
document per customer; a redelivered event changes nothing; merges, undone merges and
erasure are followed; custom field keys are remembered with their type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import Envelope, Topic
from contracts.customer import (
    BehaviourRecorded,
    ConsentGranted,
    CustomerErased,
    CustomerProfileChanged,
    CustomerRegistered,
    CustomersMerged,
    CustomersUnmerged,
)
from services.tagging.service.rule_sweep import INTERVAL_STATE
from services.tagging.store.facts import CUSTOM_FIELD_KEYS, FACTS
from tests.support.waiting import eventually
from tests.tagging.support import Service, customer_id

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def short_sweep(service: Service) -> None:
    service.runtime.state[INTERVAL_STATE] = 0.3


def envelope(tenant: str, event: Any, subject: str) -> Envelope:
    return Envelope(
        type=event.type,
        source="/services/customer",
        subject=subject,
        tenant=tenant,
        data=event.model_dump(mode="json"),
    )


async def send(service: Service, *envelopes: Envelope) -> None:
    for e in envelopes:
        await service.runtime.producer.send_and_wait(
            str(Topic.CUSTOMER), e.to_bytes(), key=e.subject.encode()
        )


async def facts(service: Service, tenant: str, cid: str, **match: Any) -> dict[str, Any]:
    query = {"tenant": tenant, "customer_id": cid, **match}
    found: dict[str, Any] = await eventually(lambda: service.db[FACTS].find_one(query))
    return found


def viewed(cid: str, n: int) -> BehaviourRecorded:
    return BehaviourRecorded(
        customer_id=cid,
        behaviour_id=f"b{n}",
        kind="product_view",
        occurred_at=NOW,
        target={"category": "baby"},
    )


async def test_events_build_one_facts_document_and_a_redelivery_changes_nothing(
    service: Service, tenant: str
) -> None:
    cid = customer_id()
    registration = CustomerRegistered(
        customer_id=cid,
        display_name="Li",
        source_channel="store",
        lifecycle_stage="lead",
        registered_at=NOW,
        owner_id="adv-1",
    )
    view = envelope(tenant, viewed(cid, 1), cid)
    consent = ConsentGranted(
        customer_id=cid, channel="sms", purpose="marketing", source="app", granted_at=NOW
    )
    # The same behaviour event twice, as at-least-once delivery may hand it over.
    await send(service, envelope(tenant, registration, cid), view, view)
    await send(service, envelope(tenant, consent, cid))
    doc = await facts(service, tenant, cid, consents={"$ne": []})
    today = NOW.date().isoformat()
    assert doc["attributes"]["lifecycle_stage"] == "lead"
    assert doc["attributes"]["owner_id"] == "adv-1"
    assert doc["consents"] == [{"key": "sms.marketing", "granted": True}]
    assert {(s["kind"], s["key"], s["value"]): s["days"] for s in doc["behaviour"]} == {
        ("product_view", "", ""): {today: 1},
        ("product_view", "category", "baby"): {today: 1},
    }


async def test_custom_fields_are_kept_and_their_keys_remembered_with_a_type(
    service: Service, tenant: str
) -> None:
    cid = customer_id()
    changed = CustomerProfileChanged(
        customer_id=cid,
        changed_fields=["custom_fields.shoe_size"],
        changed_by="ops",
        changed_at=NOW,
        attributes={"gender": "female", "custom_fields.shoe_size": 38},
    )
    await send(service, envelope(tenant, changed, cid))
    doc = await facts(service, tenant, cid)
    assert doc["custom"] == {"shoe_size": 38} and doc["attributes"]["gender"] == "female"
    keys = await service.db[CUSTOM_FIELD_KEYS].find_one({"_id": tenant})
    assert keys["fields"] == {"shoe_size": "number"}


async def test_merge_unmerge_and_erasure_are_followed(service: Service, tenant: str) -> None:
    survivor, duplicate = customer_id(), customer_id()
    await send(
        service,
        envelope(tenant, viewed(survivor, 1), survivor),
        envelope(tenant, viewed(duplicate, 2), duplicate),
    )
    await facts(service, tenant, duplicate)
    merge = CustomersMerged(
        merge_id="m1", survivor_id=survivor, merged_id=duplicate, merged_by="ops", merged_at=NOW
    )
    await send(service, envelope(tenant, merge, survivor))
    folded = await facts(service, tenant, duplicate, state="merged")
    assert folded["merged_into"] == survivor
    merged = await facts(service, tenant, survivor)
    assert merged["behaviour"][0]["days"] == {NOW.date().isoformat(): 2}
    # A view of the duplicate read after the merge counts for the survivor too, and the
    # unmerge below takes back exactly what the duplicate brought.
    await send(service, envelope(tenant, viewed(duplicate, 3), duplicate))
    await facts(service, tenant, survivor, **{f"behaviour.0.days.{NOW.date().isoformat()}": 3})
    unmerge = CustomersUnmerged(
        merge_id="m1",
        survivor_id=survivor,
        restored_id=duplicate,
        unmerged_by="ops",
        unmerged_at=NOW,
    )
    await send(service, envelope(tenant, unmerge, survivor))
    await facts(service, tenant, duplicate, state="active")
    restored = await facts(service, tenant, survivor)
    assert restored["behaviour"][0]["days"] == {NOW.date().isoformat(): 1}
    erased = CustomerErased(customer_id=survivor, erased_at=NOW)
    await send(service, envelope(tenant, erased, survivor))
    # What was known is forgotten; a tombstone without data tells the audience engine.
    tombstone = await facts(service, tenant, survivor, state="erased")
    assert set(tombstone) == {"_id", "tenant", "customer_id", "state", "updated_at"}
