"""Orders as the brand's commerce systems report them: paid, refunded (in part, line by
line, over several refunds), cancelled.

Pure: no I/O. Every report is idempotent by its id (order id, refund id): the same report
again changes nothing and answers the same; a different report under the same id is a
conflict, never a silent overwrite."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.errors import Conflict, DomainError, InvalidInput
from services.customer.domain.values import CustomerRef, ExternalId, Timestamp, future_problem

#: Bounds that keep one order document small and its sums far from overflow.
MAX_LINES = 500
MAX_REFUNDS = 100
MAX_AMOUNT = 10**12  # 分: ten billion yuan
MAX_QUANTITY = 100_000

Money = Annotated[int, Field(ge=0, le=MAX_AMOUNT, description="minor units (分)")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaidLine(Report):
    line_id: ExternalId
    sku: Label
    category: Label | None = None
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    #: What the customer paid for the line, after discounts.
    amount: Money


class PaidReport(Report):
    """An order paid, as a commerce system reports it."""

    order_id: ExternalId
    customer_id: CustomerRef
    amount: Money
    currency: Currency = "CNY"
    lines: list[PaidLine] = Field(min_length=1, max_length=MAX_LINES)
    channel: Channel | None = None
    store_id: ExternalId | None = None
    coupon_ids: list[ExternalId] = Field(default_factory=list, max_length=20)
    paid_at: Timestamp


class RefundLine(Report):
    line_id: ExternalId
    #: Items returned; 0 for a refund of money only (a price adjustment).
    quantity: int = Field(ge=0, le=MAX_QUANTITY)
    amount: Money


class RefundReport(Report):
    """(Part of) a paid order refunded. Each refund has its own id; several may follow."""

    refund_id: ExternalId
    lines: list[RefundLine] = Field(min_length=1, max_length=MAX_LINES)
    refunded_at: Timestamp

    @property
    def amount(self) -> int:
        return sum(line.amount for line in self.lines)


class CancelReport(Report):
    """An order cancelled before payment, or voided after it."""

    #: Needed only for an order never reported paid (we do not know whose it is yet).
    customer_id: CustomerRef | None = None
    cancelled_at: Timestamp
    reason: Annotated[str, StringConstraints(max_length=200)] | None = None


# -------------------------------------------------------------------------- the order


class OrderStatus(StrEnum):
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class OrderLine(PaidLine):
    refunded_quantity: int = 0
    refunded_amount: int = 0

    @property
    def settled(self) -> bool:
        # A free line (a gift) is settled by returning it; any other by its money.
        if self.amount == 0:
            return self.refunded_quantity == self.quantity
        return self.refunded_amount == self.amount


class Refund(BaseModel):
    refund_id: str
    amount: int
    lines: list[RefundLine]
    refunded_at: datetime


class Order(BaseModel):
    order_id: str
    customer_id: str
    status: OrderStatus
    amount: int = 0
    currency: str = "CNY"
    lines: list[OrderLine] = Field(default_factory=list)
    channel: str | None = None
    store_id: str | None = None
    coupon_ids: list[str] = Field(default_factory=list)
    #: None for an order cancelled before it was paid.
    paid_at: datetime | None = None
    #: The customer's first paid order ever (a later void does not make another one first).
    first_order: bool = False
    refunded_amount: int = 0
    refunds: list[Refund] = Field(default_factory=list)
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    reported_at: datetime
    version: int = 1

    @property
    def was_paid(self) -> bool:
        return self.paid_at is not None

    @property
    def occurred_at(self) -> datetime:
        """When it happened for the customer: paid, or cancelled if it never was."""
        moment = self.paid_at or self.cancelled_at
        assert moment is not None, "an order is either paid or cancelled"
        return moment

    @property
    def fully_refunded(self) -> bool:
        return self.was_paid and all(line.settled for line in self.lines)


# ------------------------------------------------------------------------------ paid


def check_paid(report: PaidReport, *, now: datetime) -> None:
    """Rules the schema cannot express: distinct lines that add up to the order."""
    _check_not_future(report.paid_at, "paid_at", now)
    _check_distinct_lines(report.lines)
    total = sum(line.amount for line in report.lines)
    if total != report.amount:
        raise InvalidInput(
            f"the order amount is {report.amount} but its lines add up to {total}",
            field="amount",
            code="amount_mismatch",
        )


def paid(report: PaidReport, *, first_order: bool, at: datetime) -> Order:
    return Order(
        **report.model_dump(exclude={"lines"}),
        lines=[OrderLine(**line.model_dump()) for line in report.lines],
        status=OrderStatus.PAID,
        first_order=first_order,
        reported_at=at,
    )


def replay_paid(order: Order, report: PaidReport) -> Order:
    """The answer to a paid report for an order we already have: the same report again is
    answered with the order as it is now; anything else is a conflict."""
    if not order.was_paid:
        raise Conflict(
            f"order {order.order_id} was cancelled before it was paid", code="order_cancelled"
        )
    differing = _paid_differences(order, report)
    if differing:
        raise Conflict(
            f"order {order.order_id} was reported paid with different " + ", ".join(differing),
            code="order_conflict",
            fields=differing,
        )
    return order


def _paid_differences(order: Order, report: PaidReport) -> list[str]:
    before = _as_paid_report(order)
    return [n for n in PaidReport.model_fields if getattr(before, n) != getattr(report, n)]


def _as_paid_report(order: Order) -> PaidReport:
    """The report this order was made from (order lines carry refunds; reports do not)."""
    fields = order.model_dump(include=set(PaidReport.model_fields) - {"lines"})
    lines = [line.model_dump(include=set(PaidLine.model_fields)) for line in order.lines]
    return PaidReport.model_validate({**fields, "lines": lines})


# --------------------------------------------------------------------------- refunds


def find_refund(order: Order, refund_id: str) -> Refund | None:
    return next((r for r in order.refunds if r.refund_id == refund_id), None)


def replay_refund(order: Order, refund: Refund, report: RefundReport) -> Order:
    """The same refund again answers the order as it is; a different one is a conflict."""
    differing = [
        name
        for name, same in (
            ("lines", refund.lines == list(report.lines)),
            ("refunded_at", refund.refunded_at == report.refunded_at),
        )
        if not same
    ]
    if differing:
        raise Conflict(
            f"refund {refund.refund_id} was reported with different " + ", ".join(differing),
            code="refund_conflict",
            fields=differing,
        )
    return order


def refund(order: Order, report: RefundReport, *, now: datetime) -> Order:
    """The order after `report`: per line, never more refunded (in items or money) than was
    paid, counting every earlier refund."""
    _check_refundable(order)
    _check_not_future(report.refunded_at, "refunded_at", now)
    _check_distinct_lines(report.lines)
    by_id = {line.line_id: line for line in order.lines}
    for index, line in enumerate(report.lines):
        _check_refund_line(by_id.get(line.line_id), line, f"lines.{index}")
        by_id[line.line_id] = _refunded_line(by_id[line.line_id], line)
    lines = [by_id[line.line_id] for line in order.lines]
    entry = Refund(
        refund_id=report.refund_id,
        amount=report.amount,
        lines=list(report.lines),
        refunded_at=report.refunded_at,
    )
    after = order.model_copy(
        update={
            "lines": lines,
            "refunds": [*order.refunds, entry],
            "refunded_amount": order.refunded_amount + report.amount,
        }
    )
    status = OrderStatus.REFUNDED if after.fully_refunded else OrderStatus.PARTIALLY_REFUNDED
    return after.model_copy(update={"status": status})


def _check_refundable(order: Order) -> None:
    if order.status == OrderStatus.CANCELLED:
        raise Conflict(f"order {order.order_id} is cancelled", code="order_cancelled")
    if len(order.refunds) >= MAX_REFUNDS:
        raise DomainError(
            f"order {order.order_id} already has {MAX_REFUNDS} refunds", code="too_many_refunds"
        )


def _check_refund_line(paid_line: OrderLine | None, line: RefundLine, field: str) -> None:
    if paid_line is None:
        raise InvalidInput(
            f"the order has no line {line.line_id}", field=f"{field}.line_id", code="unknown_line"
        )
    if line.quantity == 0 and line.amount == 0:
        raise InvalidInput("a refund line refunds nothing", field=field, code="empty_refund_line")
    for part, paid_part, done in (
        ("quantity", paid_line.quantity, paid_line.refunded_quantity),
        ("amount", paid_line.amount, paid_line.refunded_amount),
    ):
        asked = getattr(line, part)
        if done + asked > paid_part:
            raise InvalidInput(
                f"line {line.line_id} was paid {paid_part} ({part}), {done} already refunded: "
                f"{asked} more is too much",
                field=f"{field}.{part}",
                code="refund_exceeds_paid",
            )


def _refunded_line(line: OrderLine, refund_line: RefundLine) -> OrderLine:
    return line.model_copy(
        update={
            "refunded_quantity": line.refunded_quantity + refund_line.quantity,
            "refunded_amount": line.refunded_amount + refund_line.amount,
        }
    )


# ---------------------------------------------------------------------- cancellation


def cancel(order: Order, report: CancelReport, *, now: datetime) -> Order:
    """Void a paid order (the commerce system undid it): it leaves the statistics."""
    _check_same_customer(order, report)
    _check_not_future(report.cancelled_at, "cancelled_at", now)
    return order.model_copy(
        update={
            "status": OrderStatus.CANCELLED,
            "cancelled_at": report.cancelled_at,
            "cancel_reason": report.reason,
        }
    )


def replay_cancel(order: Order, report: CancelReport) -> Order:
    """Cancelling a cancelled order changes nothing: cancelling is naturally idempotent."""
    _check_same_customer(order, report)
    return order


def cancelled_unpaid(order_id: str, report: CancelReport, *, now: datetime, at: datetime) -> Order:
    """An order cancelled before we ever heard it was paid: kept, so a late paid report
    for it is recognised and refused."""
    if report.customer_id is None:
        raise InvalidInput(
            "name the customer: this order was never reported paid",
            field="customer_id",
            code="customer_required",
        )
    _check_not_future(report.cancelled_at, "cancelled_at", now)
    return Order(
        order_id=order_id,
        customer_id=report.customer_id,
        status=OrderStatus.CANCELLED,
        cancelled_at=report.cancelled_at,
        cancel_reason=report.reason,
        reported_at=at,
    )


def _check_same_customer(order: Order, report: CancelReport) -> None:
    if report.customer_id is not None and report.customer_id != order.customer_id:
        raise Conflict(
            f"order {order.order_id} belongs to another customer",
            code="order_conflict",
            fields=["customer_id"],
        )


# -------------------------------------------------------------------------- helpers


def _check_distinct_lines(lines: list[Any]) -> None:
    seen: set[str] = set()
    for index, line in enumerate(lines):
        if line.line_id in seen:
            raise InvalidInput(
                f"line {line.line_id} appears twice",
                field=f"lines.{index}.line_id",
                code="duplicate_line",
            )
        seen.add(line.line_id)


def _check_not_future(at: datetime, field: str, now: datetime) -> None:
    if problem := future_problem(at, now=now):
        raise InvalidInput(f"{field} {problem}", field=field, code="time_in_future")
