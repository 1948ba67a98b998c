"""What the channels tests (claim centre, drops, targeted issues, merges) share: customer
events published to the customer topic as the customer service would, e.g. a paid order,
so the coupon service's read model counts the customer as returning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from contracts import Envelope, Event, Topic
from contracts.customer import OrderLine, OrderPaid
from tests.coupon.support import Service


async def pay_an_order(service: Service, tenant: str, customer_id: str) -> None:
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    event = OrderPaid(
        customer_id=customer_id,
        order_id=order_id,
        amount=12_000,
        currency="CNY",
        lines=[OrderLine(line_id="1", sku="p-1", quantity=1, amount=12_000)],
        first_order=True,
        paid_at=datetime.now(UTC),
    )
    await publish(service, tenant, event)


async def publish(service: Service, tenant: str, event: Event) -> None:
    """Send `event` keyed by its subject (the customer; a merge's survivor)."""
    subject = event.subject()
    envelope = Envelope(
        type=event.type,
        source="/tests",
        subject=subject,
        tenant=tenant,
        data=event.model_dump(mode="json"),
    )
    producer = AIOKafkaProducer(bootstrap_servers=service.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(str(Topic.CUSTOMER), envelope.to_bytes(), key=subject.encode())
    finally:
        await producer.stop()
