"""Checkout (核销): which coupons apply to an order, the discount each gives, and why the
others do not. One coupon per order; coupons stack with promotions (the prices given are
after promotions), not with each other."""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from services.coupon.domain.batches import (
    ID_PATTERN,
    Audience,
    BatchSpec,
    DiscountKind,
    MarginPolicy,
    PlatformKind,
    ScopeKind,
)
from services.coupon.domain.coupons import Coupon, CouponState, effective_state


class OrderLine(BaseModel):
    line_id: str = Field(pattern=ID_PATTERN)
    product_id: str = Field(pattern=ID_PATTERN)
    category: str | None = Field(None, pattern=ID_PATTERN)
    merchant_id: str | None = Field(None, pattern=ID_PATTERN)
    self_operated: bool = True
    #: Unit price after promotions, and optional unit cost, in minor units (分).
    price: int = Field(ge=0, le=100_000_000)
    quantity: int = Field(ge=1, le=10_000)
    cost: int | None = Field(None, ge=0, le=100_000_000)


class OrderDraft(BaseModel):
    order_id: str = Field(pattern=ID_PATTERN)
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    shipping_fee: int = Field(0, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _distinct_lines(self) -> OrderDraft:
        if len({line.line_id for line in self.lines}) != len(self.lines):
            raise ValueError("line ids must be distinct")
        return self


class NotApplicable(StrEnum):
    NOT_AVAILABLE = "not_available"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WRONG_DAY = "wrong_day"
    WRONG_HOUR = "wrong_hour"
    NO_ELIGIBLE_ITEMS = "no_eligible_items"
    BELOW_THRESHOLD = "below_threshold"
    NO_SHIPPING_FEE = "no_shipping_fee"
    NOT_FIRST_ORDER = "not_first_order"
    MARGIN_TOO_LOW = "margin_too_low"


class Offer(BaseModel):
    """A coupon's answer for an order: its discount, or why it does not apply."""

    coupon_id: str
    batch_id: str
    discount: int = 0
    #: For a return coupon: the value of the coupon issued once the order is paid.
    returns: int = 0
    reason: NotApplicable | None = None


def _in_platform(spec: BatchSpec, line: OrderLine) -> bool:
    kind = spec.platform.kind
    if kind == PlatformKind.SELF_OPERATED:
        return line.self_operated
    if kind == PlatformKind.MERCHANT:
        return line.merchant_id == spec.platform.merchant_id
    return True


def _in_scope(spec: BatchSpec, line: OrderLine) -> bool:
    scope = spec.scope
    if scope.kind == ScopeKind.PRODUCTS:
        return line.product_id in scope.product_ids
    if scope.kind == ScopeKind.CATEGORIES:
        return line.category in scope.categories
    return True


def eligible_lines(spec: BatchSpec, order: OrderDraft) -> list[OrderLine]:
    return [ln for ln in order.lines if _in_platform(spec, ln) and _in_scope(spec, ln)]


def _timing(spec: BatchSpec, coupon: Coupon, now: datetime, zone: tzinfo) -> NotApplicable | None:
    if now < coupon.valid_from:
        return NotApplicable.NOT_YET_VALID
    if now >= coupon.valid_until:
        return NotApplicable.EXPIRED
    local = now.astimezone(zone)
    if spec.usable_weekdays and local.isoweekday() not in spec.usable_weekdays:
        return NotApplicable.WRONG_DAY
    hours = spec.usable_hours
    if hours and not hours.from_hour <= local.hour < hours.to_hour:
        return NotApplicable.WRONG_HOUR
    return None


def discount_for(spec: BatchSpec, coupon: Coupon, amount: int) -> int:
    """The discount on an eligible amount that meets the threshold; never above it."""
    d = spec.discount
    if d.kind == DiscountKind.PERCENT:
        off = amount * (100 - (d.pay_percent or 0)) // 100
        return min(off, d.cap or off, amount)
    if d.kind == DiscountKind.RETURN:
        return 0
    return min(coupon.face_value, amount)


def _margin_ok(lines: list[OrderLine], amount: int, off: int, policy: MarginPolicy) -> bool:
    if any(ln.cost is None for ln in lines):
        return True  # without costs the batch's configuration check stands
    cost = sum((ln.cost or 0) * ln.quantity for ln in lines)
    net = amount - off
    return net > 0 and (net - cost) * 100 >= policy.min_margin_percent * net


def offer(
    spec: BatchSpec,
    coupon: Coupon,
    order: OrderDraft,
    *,
    paid_orders: int,
    now: datetime,
    zone: tzinfo,
    policy: MarginPolicy,
    locked_to: str | None = None,
) -> Offer:
    """What `coupon` gives `order`. `locked_to` is the order id a lock may already hold it for."""

    def no(reason: NotApplicable) -> Offer:
        return Offer(coupon_id=coupon.id, batch_id=coupon.batch_id, reason=reason)

    state = effective_state(coupon, now)
    held_for_this = (
        state == CouponState.LOCKED and coupon.lock and coupon.lock.order_id == locked_to
    )
    if state != CouponState.AVAILABLE and not held_for_this:
        return no(
            NotApplicable.EXPIRED if state == CouponState.EXPIRED else NotApplicable.NOT_AVAILABLE
        )
    if reason := _timing(spec, coupon, now, zone):
        return no(reason)
    if spec.audience == Audience.FIRST_ORDER and paid_orders > 0:
        return no(NotApplicable.NOT_FIRST_ORDER)
    if spec.scope.kind == ScopeKind.SHIPPING:
        if order.shipping_fee <= 0:
            return no(NotApplicable.NO_SHIPPING_FEE)
        off = min(coupon.face_value, order.shipping_fee)
        return Offer(coupon_id=coupon.id, batch_id=coupon.batch_id, discount=off)
    lines = eligible_lines(spec, order)
    if not lines:
        return no(NotApplicable.NO_ELIGIBLE_ITEMS)
    amount = sum(ln.price * ln.quantity for ln in lines)
    if amount < max(spec.discount.threshold, 1):
        return no(NotApplicable.BELOW_THRESHOLD)
    off = discount_for(spec, coupon, amount)
    if not _margin_ok(lines, amount, off, policy):
        return no(NotApplicable.MARGIN_TOO_LOW)
    returns = spec.discount.amount or 0 if spec.discount.kind == DiscountKind.RETURN else 0
    return Offer(coupon_id=coupon.id, batch_id=coupon.batch_id, discount=off, returns=returns)


def best_first(offers: list[Offer]) -> tuple[list[Offer], list[Offer]]:
    """Applicable offers by discount (then returned value) descending, and the others."""
    applicable = [o for o in offers if o.reason is None]
    applicable.sort(key=lambda o: (o.discount, o.returns), reverse=True)
    return applicable, [o for o in offers if o.reason is not None]
