"""Order events as the customer service publishes them, for the monitoring tests: paid
orders of a merchant (store) with one line, locked coupons, refunds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from contracts import Envelope, Event, Topic
from contracts.customer import OrderLine, OrderPaid
from tests.coupon.support import ok


def paid(
    order_id: str,
    amount: int,
    *,
    customer: str = "cus_m",
    merchant: str | None = "m-1",
    sku: str = "sku-1",
    category: str = "shoes",
    at: datetime | None = None,
) -> OrderPaid:
    return OrderPaid(
        customer_id=customer,
        order_id=order_id,
        amount=amount,
        currency="CNY",
        lines=[OrderLine(line_id="1", sku=sku, category=category, quantity=1, amount=amount)],
        store_id=merchant,
        first_order=False,
        paid_at=at or datetime.now(UTC),
    )


async def publish(bootstrap: str, tenant: str, *events: Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for event in events:
            envelope = Envelope(
                type=event.type,
                source="/tests",
                subject=event.subject(),
                tenant=tenant,
                data=event.model_dump(mode="json"),
            )
            key = str(getattr(event, "customer_id", envelope.subject)).encode()
            await producer.send_and_wait(str(Topic.CUSTOMER), envelope.to_bytes(), key=key)
    finally:
        await producer.stop()


def checkout(order_id: str, amount: int, sku: str = "sku-1") -> dict[str, Any]:
    """The order as the checkout sends it to lock a coupon."""
    line = {"line_id": "1", "product_id": sku, "category": "shoes", "price": amount}
    return {"order_id": order_id, "lines": [{"quantity": 1, **line}], "shipping_fee": 0}


async def lock(
    api: httpx.AsyncClient, coupon_id: str, customer: str, order_id: str, amount: int
) -> dict:
    body = {"customer_id": customer, "order": checkout(order_id, amount)}
    return await ok(api.post(f"/coupons/{coupon_id}/lock", json=body))
