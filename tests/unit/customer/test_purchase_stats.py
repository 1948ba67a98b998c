"""Purchase statistics without I/O: counters move with paid, refunded and voided orders;
the derived figures (average order value, frequency, refund rate, RFM) are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.errors import InvalidInput
from services.customer.domain import orders as order_rules
from services.customer.domain import purchase_stats as rules
from services.customer.domain.orders import Order, PaidReport
from services.customer.domain.purchase_stats import PurchaseSpan, PurchaseStats

DAY = timedelta(days=1)
START = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOMER = "cus_" + "c" * 32


def order(
    order_id: str = "SO-1", *, amount: int = 10_000, paid_at: datetime = START, **more: Any
) -> Order:
    report = PaidReport(
        order_id=order_id,
        customer_id=CUSTOMER,
        amount=amount,
        lines=[{"line_id": "L1", "sku": "S", "quantity": 1, "amount": amount}],  # type: ignore[list-item]
        paid_at=paid_at,
        **more,
    )
    return order_rules.paid(report, first_order=False, at=paid_at)


def stats_of(*orders: Order) -> PurchaseStats:
    stats = rules.empty(CUSTOMER)
    for each in orders:
        stats = rules.after_paid(stats, each, at=START)
    return stats


def test_a_customer_without_orders_has_empty_figures() -> None:
    summary = rules.summarize(rules.empty(CUSTOMER), now=START)
    assert summary.order_count == 0 and summary.net_amount == 0
    assert summary.average_order_value is None and summary.purchase_frequency is None
    assert summary.refund_rate == 0.0
    assert summary.rfm.model_dump() == {"recency_days": None, "frequency": 0, "monetary": 0}


def test_paid_orders_add_up_and_set_the_purchase_span() -> None:
    stats = stats_of(
        order("A", amount=100, paid_at=START + 5 * DAY),
        order("B", amount=300, paid_at=START),
        order("C", amount=200, paid_at=START + 2 * DAY),
    )
    assert (stats.order_count, stats.total_paid) == (3, 600)
    assert (stats.first_purchase_at, stats.last_purchase_at) == (START, START + 5 * DAY)
    assert stats.currency == "CNY"


def test_only_the_first_order_ever_is_first() -> None:
    empty = rules.empty(CUSTOMER)
    assert rules.is_first_order(empty)
    once = rules.after_paid(empty, order("A"), at=START)
    assert once.first_order_id == "A" and not rules.is_first_order(once)
    voided = rules.after_void(once, order("A"), span=PurchaseSpan(None, None), at=START)
    assert voided.order_count == 0 and not rules.is_first_order(voided)


def test_orders_in_another_currency_are_refused_not_added() -> None:
    stats = stats_of(order("A"))
    with pytest.raises(InvalidInput) as refused:
        rules.after_paid(stats, order("B", currency="USD"), at=START)
    assert refused.value.code == "currency_mismatch"


def test_refunds_lower_the_net_and_raise_the_refund_rate() -> None:
    stats = rules.after_refund(stats_of(order("A", amount=400)), 100, at=START)
    summary = rules.summarize(stats, now=START)
    assert (summary.total_refunded, summary.net_amount) == (100, 300)
    assert summary.refund_rate == 0.25
    assert summary.order_count == 1  # a refunded order was still bought


def test_a_void_removes_the_order_with_its_refunds_and_narrows_the_span() -> None:
    voided = order("B", amount=500, paid_at=START + 9 * DAY)
    stats = stats_of(order("A", amount=100), voided)
    stats = rules.after_refund(stats, 200, at=START)
    voided = voided.model_copy(update={"refunded_amount": 200})
    after = rules.after_void(stats, voided, span=PurchaseSpan(START, START), at=START)
    assert (after.order_count, after.total_paid, after.total_refunded) == (1, 100, 0)
    assert after.last_purchase_at == START


def test_average_order_value_is_net_per_order_rounded_half_up() -> None:
    assert rules.average_order_value(stats_of(order("A", amount=1), order("B", amount=2))) == 2
    assert rules.average_order_value(stats_of(order("A", amount=1), order("B", amount=1))) == 1
    three = stats_of(order("A", amount=100), order("B", amount=100), order("C", amount=101))
    assert rules.average_order_value(three) == 100


@pytest.mark.parametrize(
    ("days_between", "orders", "expected"),
    [
        (0, 1, 1.0),  # one order: one per period, not infinitely many
        (0, 2, 2.0),  # a span shorter than 30 days counts as one period
        (90, 4, round(4 / 3, 4)),
        (60, 3, 1.5),
    ],
)
def test_purchase_frequency_is_orders_per_30_days_over_the_active_span(
    days_between: int, orders: int, expected: float
) -> None:
    paid = [
        order(f"O{i}", paid_at=START + (days_between * DAY if i else timedelta()))
        for i in range(orders)
    ]
    assert rules.purchase_frequency(stats_of(*paid)) == expected


def test_recency_counts_whole_days_since_the_last_purchase() -> None:
    stats = stats_of(order("A", paid_at=START))
    assert rules.recency_days(stats, now=START + 3 * DAY + timedelta(hours=23)) == 3
    assert rules.recency_days(stats, now=START - DAY) == 0  # a clock behind never goes negative


def test_rfm_inputs_are_recency_frequency_and_net_monetary() -> None:
    stats = rules.after_refund(
        stats_of(order("A", amount=300), order("B", amount=700)), 250, at=START
    )
    rfm = rules.summarize(stats, now=START + 10 * DAY).rfm
    assert (rfm.recency_days, rfm.frequency, rfm.monetary) == (10, 2, 750)


@given(
    amounts=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30),
    refund_share=st.floats(min_value=0, max_value=1),
)
def test_counters_are_the_sum_of_the_orders_in_any_order(
    amounts: list[int], refund_share: float
) -> None:
    orders = [order(f"O{i}", amount=a, paid_at=START + i * DAY) for i, a in enumerate(amounts)]
    forward, backward = stats_of(*orders), stats_of(*reversed(orders))
    for stats in (forward, backward):
        assert stats.total_paid == sum(amounts) and stats.order_count == len(amounts)
        assert stats.first_purchase_at == START
        assert stats.last_purchase_at == START + (len(amounts) - 1) * DAY
    refunded = int(sum(amounts) * refund_share)
    summary = rules.summarize(rules.after_refund(forward, refunded, at=START), now=START)
    assert 0.0 <= summary.refund_rate <= 1.0
    assert summary.net_amount == sum(amounts) - refunded
