"""Purchase statistics (交易行为统计) of one customer, kept current as orders are paid,
refunded and voided, and the figures derived from them (RFM inputs among them).

Pure: no I/O. The stored part is counters and the purchase span; everything derived is
computed on read (`summarize`), so a recency never goes stale in the store."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel

from servicekit.errors import InvalidInput
from services.customer.domain.orders import Order

#: Purchase frequency is expressed as orders per this many days.
FREQUENCY_PERIOD_DAYS = 30
SECONDS_PER_DAY = 86_400


class PurchaseStats(BaseModel):
    """What is stored, one document per customer. Amounts in minor units (分)."""

    customer_id: str
    #: The currency of every counted order: stats never add yuan to dollars.
    currency: str | None = None
    #: Paid orders, less those voided; a refund (even a full one) leaves an order counted.
    order_count: int = 0
    total_paid: int = 0
    total_refunded: int = 0
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    #: The first order ever paid; set once, so a later order is never "first" again.
    first_order_id: str | None = None
    changed_at: datetime | None = None
    #: 0 until stored; each save adds one (optimistic concurrency).
    version: int = 0

    @property
    def net_amount(self) -> int:
        return self.total_paid - self.total_refunded


class PurchaseSpan(NamedTuple):
    """First and last payment among a customer's counted orders."""

    first: datetime | None
    last: datetime | None


def empty(customer_id: str) -> PurchaseStats:
    return PurchaseStats(customer_id=customer_id)


def is_first_order(stats: PurchaseStats) -> bool:
    return stats.first_order_id is None


def after_paid(stats: PurchaseStats, order: Order, *, at: datetime) -> PurchaseStats:
    assert order.paid_at is not None, "only a paid order is counted"
    if stats.currency not in (None, order.currency):
        raise InvalidInput(
            f"this customer's orders are in {stats.currency}, not {order.currency}",
            field="currency",
            code="currency_mismatch",
        )
    return stats.model_copy(
        update={
            "currency": order.currency,
            "order_count": stats.order_count + 1,
            "total_paid": stats.total_paid + order.amount,
            "first_purchase_at": _earliest(stats.first_purchase_at, order.paid_at),
            "last_purchase_at": _latest(stats.last_purchase_at, order.paid_at),
            "first_order_id": stats.first_order_id or order.order_id,
            "changed_at": at,
        }
    )


def after_refund(stats: PurchaseStats, amount: int, *, at: datetime) -> PurchaseStats:
    return stats.model_copy(
        update={"total_refunded": stats.total_refunded + amount, "changed_at": at}
    )


def after_void(
    stats: PurchaseStats, order: Order, *, span: PurchaseSpan, at: datetime
) -> PurchaseStats:
    """A voided order leaves the statistics entirely, with what was refunded of it; the
    span is that of the orders still counted (a min/max cannot be undone by arithmetic)."""
    return stats.model_copy(
        update={
            "order_count": stats.order_count - 1,
            "total_paid": stats.total_paid - order.amount,
            "total_refunded": stats.total_refunded - order.refunded_amount,
            "first_purchase_at": span.first,
            "last_purchase_at": span.last,
            "changed_at": at,
        }
    )


def _earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else min(a, b)


def _latest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else max(a, b)


# --------------------------------------------------------------------------- derived


def average_order_value(stats: PurchaseStats) -> int | None:
    """Net amount per counted order, rounded half up to a whole 分; None without orders."""
    if stats.order_count <= 0:
        return None
    return (2 * stats.net_amount + stats.order_count) // (2 * stats.order_count)


def purchase_frequency(stats: PurchaseStats) -> float | None:
    """Orders per 30 days over the active span (first to last purchase). A span shorter
    than one period counts as one, so two orders on a first day read 2.0, not infinity."""
    if stats.order_count <= 0 or stats.first_purchase_at is None or stats.last_purchase_at is None:
        return None
    span_days = (stats.last_purchase_at - stats.first_purchase_at).total_seconds() / SECONDS_PER_DAY
    periods = max(span_days, FREQUENCY_PERIOD_DAYS) / FREQUENCY_PERIOD_DAYS
    return round(stats.order_count / periods, 4)


def refund_rate(stats: PurchaseStats) -> float:
    """Share of the money paid that was refunded (0 to 1)."""
    if stats.total_paid <= 0:
        return 0.0
    return round(stats.total_refunded / stats.total_paid, 4)


def recency_days(stats: PurchaseStats, *, now: datetime) -> int | None:
    """Whole days since the last purchase; None for a customer who never bought."""
    if stats.last_purchase_at is None:
        return None
    return max(0, (now - stats.last_purchase_at).days)


class RfmInputs(BaseModel):
    """Recency, frequency, monetary: the inputs segment rules score customers by."""

    recency_days: int | None
    frequency: int
    monetary: int


class PurchaseSummary(BaseModel):
    """The statistics as answered to a caller, derived figures included."""

    customer_id: str
    currency: str | None
    order_count: int
    total_paid: int
    total_refunded: int
    net_amount: int
    average_order_value: int | None
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    purchase_frequency: float | None
    refund_rate: float
    rfm: RfmInputs
    changed_at: datetime | None


def summarize(stats: PurchaseStats, *, now: datetime) -> PurchaseSummary:
    return PurchaseSummary(
        **stats.model_dump(exclude={"first_order_id", "version"}),
        net_amount=stats.net_amount,
        average_order_value=average_order_value(stats),
        purchase_frequency=purchase_frequency(stats),
        refund_rate=refund_rate(stats),
        rfm=RfmInputs(
            recency_days=recency_days(stats, now=now),
            frequency=stats.order_count,
            monetary=stats.net_amount,
        ),
    )
