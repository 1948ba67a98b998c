"""Order rules without I/O: lines add up, refunds never exceed what was paid per line over
all refunds, re-reports are recognised or refused, cancellation voids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from servicekit.errors import Conflict, DomainError, InvalidInput
from services.customer.domain import orders as rules
from services.customer.domain.orders import (
    CancelReport,
    Order,
    OrderStatus,
    PaidReport,
    RefundReport,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CUSTOMER = "cus_" + "a" * 32


def paid_report(**overrides: Any) -> PaidReport:
    fields: dict[str, Any] = {
        "order_id": "SO-1",
        "customer_id": CUSTOMER,
        "amount": 15_000,
        "lines": [
            {"line_id": "L1", "sku": "TEA-1", "category": "tea", "quantity": 2, "amount": 10_000},
            {"line_id": "L2", "sku": "CUP-1", "quantity": 1, "amount": 5_000},
        ],
        "paid_at": NOW - timedelta(hours=1),
    }
    return PaidReport.model_validate({**fields, **overrides})


def paid_order(**overrides: Any) -> Order:
    report = paid_report(**overrides)
    rules.check_paid(report, now=NOW)
    return rules.paid(report, first_order=True, at=NOW)


def refund_report(refund_id: str = "R1", *lines: tuple[str, int, int]) -> RefundReport:
    return RefundReport(
        refund_id=refund_id,
        lines=[{"line_id": i, "quantity": q, "amount": a} for i, q, a in lines],  # type: ignore[misc]
        refunded_at=NOW,
    )


# ------------------------------------------------------------------------------ paid


def test_a_paid_order_keeps_its_lines_and_starts_with_nothing_refunded() -> None:
    order = paid_order()
    assert order.status == OrderStatus.PAID and order.currency == "CNY"
    assert [(line.line_id, line.refunded_amount) for line in order.lines] == [("L1", 0), ("L2", 0)]
    assert order.first_order and order.occurred_at == NOW - timedelta(hours=1)


def test_lines_must_add_up_to_the_order_amount() -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.check_paid(paid_report(amount=14_999), now=NOW)
    assert refused.value.code == "amount_mismatch"
    assert refused.value.extra["errors"][0]["field"] == "amount"


def test_a_line_id_may_appear_once() -> None:
    lines = [
        {"line_id": "L1", "sku": "A", "quantity": 1, "amount": 100},
        {"line_id": "L1", "sku": "B", "quantity": 1, "amount": 100},
    ]
    with pytest.raises(InvalidInput) as refused:
        rules.check_paid(paid_report(amount=200, lines=lines), now=NOW)
    assert refused.value.code == "duplicate_line"


def test_a_payment_in_the_future_is_refused_but_clock_skew_is_tolerated() -> None:
    rules.check_paid(paid_report(paid_at=NOW + timedelta(minutes=4)), now=NOW)
    with pytest.raises(InvalidInput) as refused:
        rules.check_paid(paid_report(paid_at=NOW + timedelta(hours=1)), now=NOW)
    assert refused.value.code == "time_in_future"


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": -1},
        {"amount": {"$gt": 0}},
        {"customer_id": {"$ne": None}},
        {"order_id": "has space"},
        {"currency": "cny"},
        {"lines": []},
        {"paid_at": "2026-05-01T10:00:00"},  # naive: whose ten o'clock?
        {"tenant": "another"},
    ],
)
def test_malformed_reports_do_not_validate(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        paid_report(**overrides)


def test_times_are_kept_in_utc_at_millisecond_precision() -> None:
    report = paid_report(paid_at="2026-05-01T18:30:00.123456+08:00")
    assert report.paid_at == datetime(2026, 5, 1, 10, 30, 0, 123000, tzinfo=UTC)


def test_the_same_paid_report_again_answers_the_order() -> None:
    order = paid_order()
    assert rules.replay_paid(order, paid_report()) is order


def test_another_paid_report_under_the_same_id_is_a_conflict_naming_the_fields() -> None:
    order = paid_order()
    changed_lines = [
        {"line_id": "L1", "sku": "TEA-1", "category": "tea", "quantity": 2, "amount": 10_001},
        {"line_id": "L2", "sku": "CUP-1", "quantity": 1, "amount": 5_000},
    ]
    with pytest.raises(Conflict) as refused:
        rules.replay_paid(order, paid_report(amount=15_001, lines=changed_lines))
    assert refused.value.code == "order_conflict"
    assert refused.value.extra["fields"] == ["amount", "lines"]


def test_a_paid_report_for_an_order_cancelled_unpaid_is_refused() -> None:
    cancelled = rules.cancelled_unpaid(
        "SO-1", CancelReport(customer_id=CUSTOMER, cancelled_at=NOW), now=NOW, at=NOW
    )
    with pytest.raises(Conflict) as refused:
        rules.replay_paid(cancelled, paid_report())
    assert refused.value.code == "order_cancelled"


# --------------------------------------------------------------------------- refunds


def test_a_partial_refund_moves_the_line_and_the_order() -> None:
    order = rules.refund(paid_order(), refund_report("R1", ("L1", 1, 5_000)), now=NOW)
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert order.refunded_amount == 5_000
    assert (order.lines[0].refunded_quantity, order.lines[0].refunded_amount) == (1, 5_000)
    assert not order.fully_refunded


def test_refunds_add_up_per_line_and_can_never_exceed_what_was_paid() -> None:
    order = rules.refund(paid_order(), refund_report("R1", ("L1", 1, 6_000)), now=NOW)
    with pytest.raises(InvalidInput) as refused:
        rules.refund(order, refund_report("R2", ("L1", 1, 4_001)), now=NOW)
    assert refused.value.code == "refund_exceeds_paid"
    assert refused.value.extra["errors"][0]["field"] == "lines.0.amount"
    order = rules.refund(order, refund_report("R2", ("L1", 1, 4_000)), now=NOW)
    with pytest.raises(InvalidInput) as refused:
        rules.refund(order, refund_report("R3", ("L1", 1, 0)), now=NOW)
    assert refused.value.extra["errors"][0]["field"] == "lines.0.quantity"


def test_refunding_every_line_in_full_refunds_the_order() -> None:
    order = rules.refund(
        paid_order(), refund_report("R1", ("L1", 2, 10_000), ("L2", 1, 5_000)), now=NOW
    )
    assert order.status == OrderStatus.REFUNDED and order.fully_refunded
    assert order.refunded_amount == order.amount


def test_money_only_refunds_settle_a_line_by_its_amount() -> None:
    order = rules.refund(paid_order(), refund_report("R1", ("L1", 0, 10_000)), now=NOW)
    order = rules.refund(order, refund_report("R2", ("L2", 0, 5_000)), now=NOW)
    assert order.fully_refunded


def test_a_refund_line_must_name_a_line_of_the_order_and_refund_something() -> None:
    with pytest.raises(InvalidInput) as unknown:
        rules.refund(paid_order(), refund_report("R1", ("L9", 1, 1)), now=NOW)
    assert unknown.value.code == "unknown_line"
    with pytest.raises(InvalidInput) as empty:
        rules.refund(paid_order(), refund_report("R1", ("L1", 0, 0)), now=NOW)
    assert empty.value.code == "empty_refund_line"


def test_one_refund_cannot_name_a_line_twice_to_slip_past_the_limit() -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.refund(paid_order(), refund_report("R1", ("L2", 1, 5_000), ("L2", 1, 5_000)), now=NOW)
    assert refused.value.code == "duplicate_line"


def test_the_same_refund_again_is_recognised_and_a_different_one_is_a_conflict() -> None:
    order = rules.refund(paid_order(), refund_report("R1", ("L1", 1, 5_000)), now=NOW)
    earlier = rules.find_refund(order, "R1")
    assert earlier is not None
    assert rules.replay_refund(order, earlier, refund_report("R1", ("L1", 1, 5_000))) is order
    with pytest.raises(Conflict) as refused:
        rules.replay_refund(order, earlier, refund_report("R1", ("L1", 1, 4_000)))
    assert refused.value.code == "refund_conflict" and refused.value.extra["fields"] == ["lines"]


def test_an_order_takes_a_bounded_number_of_refunds() -> None:
    order = paid_order(
        amount=1_000, lines=[{"line_id": "L", "sku": "S", "quantity": 1, "amount": 1_000}]
    )
    for i in range(rules.MAX_REFUNDS):
        order = rules.refund(order, refund_report(f"R{i}", ("L", 0, 1)), now=NOW)
    with pytest.raises(DomainError) as refused:
        rules.refund(order, refund_report("one-more", ("L", 0, 1)), now=NOW)
    assert refused.value.code == "too_many_refunds"


# ---------------------------------------------------------------------- cancellation


def test_a_cancelled_order_cannot_be_refunded() -> None:
    order = rules.cancel(paid_order(), CancelReport(cancelled_at=NOW), now=NOW)
    assert order.status == OrderStatus.CANCELLED and order.was_paid
    with pytest.raises(Conflict) as refused:
        rules.refund(order, refund_report("R1", ("L1", 1, 1)), now=NOW)
    assert refused.value.code == "order_cancelled"


def test_cancelling_needs_the_right_customer() -> None:
    other = CancelReport(customer_id="cus_" + "b" * 32, cancelled_at=NOW)
    with pytest.raises(Conflict):
        rules.cancel(paid_order(), other, now=NOW)
    cancelled = rules.cancel(paid_order(), CancelReport(cancelled_at=NOW), now=NOW)
    with pytest.raises(Conflict):
        rules.replay_cancel(cancelled, other)
    assert rules.replay_cancel(cancelled, CancelReport(cancelled_at=NOW)) is cancelled


def test_an_order_never_seen_paid_is_cancelled_only_with_its_customer() -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.cancelled_unpaid("SO-9", CancelReport(cancelled_at=NOW), now=NOW, at=NOW)
    assert refused.value.code == "customer_required"
    order = rules.cancelled_unpaid(
        "SO-9", CancelReport(customer_id=CUSTOMER, cancelled_at=NOW), now=NOW, at=NOW
    )
    assert not order.was_paid and order.occurred_at == NOW and not order.fully_refunded
