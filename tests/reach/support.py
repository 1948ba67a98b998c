"""What the reach tests share: the running service, test data, readers of what was sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts import Envelope, Event, Topic
from services.reach.providers.sandbox import SANDBOX
from services.reach.settings import ReachSettings
from services.reach.store.audience import AudienceStore
from tests.support.running import RunningService

Service = RunningService[ReachSettings]
NO_QUIET_HOURS = {"quiet_start": "00:00", "quiet_end": "00:00"}


def customer_id() -> str:
    return f"cus_{uuid.uuid4().hex[:20]}"


async def consent(
    service: Service, tenant: str, *customers: str, channel: str = "sms", purpose: str = "marketing"
) -> None:
    """Consent in reach's read model, as `customer.consent_granted.v1` would leave it."""
    store = AudienceStore(service.db)
    for cid in customers:
        await store.record_consent(
            tenant, cid, channel, purpose, granted=True, at=datetime.now(UTC)
        )


async def policy(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await api.put("/policy", json={**NO_QUIET_HOURS, **fields})
    assert response.status_code == 200, response.text
    return response.json()


SMS = {"sign_name": "品牌商城", "body": "{{customer_name}}您好, 送您{{coupon_amount}}元券 {{link}}"}


async def template(
    api: httpx.AsyncClient, template_id: str = "welcome", channel: str = "sms", **content: Any
) -> dict[str, Any]:
    if channel == "sms" and content:
        content.setdefault("sign_name", SMS["sign_name"])
    body = {
        "template_id": template_id,
        "channel": channel,
        "name": template_id,
        "content": content or SMS,
        "defaults": {"customer_name": "会员", "coupon_amount": "10"},
    }
    response = await api.post("/templates", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def send(
    api: httpx.AsyncClient,
    customer: str,
    key: str | None = None,
    *,
    channel: str = "sms",
    purpose: str = "marketing",
    template_id: str = "welcome",
    **variables: str,
) -> dict[str, Any]:
    body = {
        "customer_id": customer,
        "channel": channel,
        "purpose": purpose,
        "template_id": template_id,
        "variables": variables,
        "dedupe_key": key or uuid.uuid4().hex,
    }
    response = await api.post("/messages", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def sandbox(
    service: Service, tenant: str, customer: str | None = None
) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"tenant": tenant}
    if customer:
        query["customer_id"] = customer
    return await service.db[SANDBOX].find(query).to_list()


async def publish(service: Service, tenant: str, *events: Event) -> None:
    """Send events as their owning service does: an envelope keyed by the customer."""
    for event in events:
        envelope = Envelope(
            type=event.type,
            source="/tests",
            subject=event.subject(),
            tenant=tenant,
            data=event.model_dump(mode="json"),
        )
        await service.runtime.producer.send_and_wait(
            str(event.topic), envelope.to_bytes(), key=envelope.subject.encode()
        )


__all__ = ["Topic"]
