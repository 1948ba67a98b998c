"""What the loyalty tests share: the running service, customer ids, order events published
to the real broker as the customer service would, and small request helpers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from contracts import Envelope, Event
from contracts.customer import OrderLine, OrderPaid, OrderRefunded, RefundedLine
from services.loyalty.settings import LoyaltySettings
from tests.support.running import RunningService

Service = RunningService[LoyaltySettings]


def customer() -> str:
    return f"cus_{uuid.uuid4().hex}"


def key() -> str:
    return f"key-{uuid.uuid4().hex}"


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


async def publish(producer: AIOKafkaProducer, tenant: str, *events: Event) -> list[Envelope]:
    """Publish contract events as the customer service does (keyed by customer)."""
    sent = []
    for event in events:
        envelope = Envelope(
            type=event.type,
            source="/services/customer",
            subject=event.subject(),
            tenant=tenant,
            data=event.model_dump(mode="json"),
        )
        await producer.send_and_wait(
            str(event.topic), envelope.to_bytes(), key=event.subject().encode()
        )
        sent.append(envelope)
    return sent


def paid(
    customer_id: str,
    order_id: str,
    *lines: tuple[str, int] | tuple[str, int, str],
    first_order: bool = False,
    paid_at: datetime | None = None,
) -> OrderPaid:
    """An order paid; each line is (line id, amount) or (line id, amount, category)."""
    order_lines = [
        OrderLine(
            line_id=line[0],
            sku=f"sku-{line[0]}",
            category=line[2] if len(line) > 2 else None,  # type: ignore[misc]
            quantity=1,
            amount=line[1],
        )
        for line in lines
    ]
    return OrderPaid(
        customer_id=customer_id,
        order_id=order_id,
        amount=sum(line.amount for line in order_lines),
        currency="CNY",
        lines=order_lines,
        first_order=first_order,
        paid_at=paid_at or ago(minutes=1),
    )


def refunded(
    customer_id: str, order_id: str, refund_id: str, *lines: tuple[str, int], full: bool = False
) -> OrderRefunded:
    return OrderRefunded(
        customer_id=customer_id,
        order_id=order_id,
        refund_id=refund_id,
        amount=sum(amount for _, amount in lines),
        lines=[RefundedLine(line_id=i, quantity=1, amount=a) for i, a in lines],
        fully_refunded=full,
        refunded_at=ago(seconds=1),
    )


async def get(api: httpx.AsyncClient, path: str) -> Any:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def points(api: httpx.AsyncClient, customer_id: str) -> dict[str, Any]:
    return await get(api, f"/customers/{customer_id}/points")


async def entries(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    body = await get(api, f"/customers/{customer_id}/points/entries?limit=200")
    return body["items"]


async def post(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], *, idempotency_key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": idempotency_key or key()}
    return await api.post(path, json=body, headers=headers)


async def set_rule(api: httpx.AsyncClient, **rule: Any) -> None:
    response = await api.put("/earning-rule", json=rule)
    assert response.status_code == 200, response.text
