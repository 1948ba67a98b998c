"""Coupons in the wallet (卡包) and the rules of claiming one.

available → locked (at checkout) → used; available → expired (validity over) or revoked.
A lock that outlives its order's payment window counts as available again."""

from __future__ import annotations

import random
from datetime import datetime, tzinfo
from enum import StrEnum

from pydantic import BaseModel, Field

from services.coupon.domain.batches import Audience, BatchSpec, DiscountKind


class CouponState(StrEnum):
    AVAILABLE = "available"
    LOCKED = "locked"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Refusal(StrEnum):
    """Why a claim or grant was refused: the `code` of the 409 problem."""

    SOLD_OUT = "sold_out"
    LIMIT_REACHED = "limit_reached"
    DAILY_LIMIT_REACHED = "daily_limit_reached"
    BATCH_NOT_ACTIVE = "batch_not_active"
    CLAIM_NOT_OPEN = "claim_not_open"
    CLAIM_CLOSED = "claim_closed"
    NOT_NEW_CUSTOMER = "not_new_customer"
    BUDGET_BLOCKED = "budget_blocked"


REFUSAL_DETAIL = {
    Refusal.SOLD_OUT: "the batch has no coupons left",
    Refusal.LIMIT_REACHED: "the customer holds as many coupons of this batch as allowed",
    Refusal.DAILY_LIMIT_REACHED: "the customer claimed as many of this batch today as allowed",
    Refusal.BATCH_NOT_ACTIVE: "the batch is not open for issuing (campaign not running)",
    Refusal.CLAIM_NOT_OPEN: "claiming this batch has not started yet",
    Refusal.CLAIM_CLOSED: "claiming this batch has ended",
    Refusal.NOT_NEW_CUSTOMER: "this batch is for new customers only (no paid order yet)",
    Refusal.BUDGET_BLOCKED: "issuing is blocked: used coupons spent the budget to its alert line",
}


class LineShare(BaseModel):
    """The part of the discount one order line carries (pro rata to its amount among the
    lines the coupon applies to; 0 for the others), for partial refunds."""

    amount: int
    quantity: int


class Lock(BaseModel):
    order_id: str
    discount: int
    expires_at: datetime
    #: The discount split over the order's lines, by line id.
    shares: dict[str, LineShare] = Field(default_factory=dict)


class Coupon(BaseModel):
    id: str
    batch_id: str
    campaign_id: str
    customer_id: str
    channel: str
    reference: str | None = None
    state: CouponState
    face_value: int
    valid_from: datetime
    valid_until: datetime
    claimed_at: datetime
    lock: Lock | None = None
    order_id: str | None = None
    discount: int | None = None
    used_at: datetime | None = None
    #: Partial refunds of the order that used it: quantities refunded by line, the part of
    #: the discount given back for them, and the refunds seen (each counts once).
    refunded_lines: dict[str, int] = Field(default_factory=dict)
    given_back: int = 0
    refund_ids: list[str] = Field(default_factory=list)


def claim_window_refusal(spec: BatchSpec, now: datetime) -> Refusal | None:
    if now < spec.claim_from:
        return Refusal.CLAIM_NOT_OPEN
    if now >= spec.claim_until:
        return Refusal.CLAIM_CLOSED
    return None


def audience_refusal(spec: BatchSpec, paid_orders: int) -> Refusal | None:
    if spec.audience != Audience.ANYONE and paid_orders > 0:
        return Refusal.NOT_NEW_CUSTOMER
    return None


def face_value(spec: BatchSpec, rng: random.Random) -> int:
    """The coupon's own amount: drawn for a random red packet, else the batch's."""
    d = spec.discount
    if d.kind == DiscountKind.RANDOM:
        assert d.min_amount is not None and d.max_amount is not None
        return rng.randint(d.min_amount, d.max_amount)
    return d.amount or d.cap or 0


def local_day(at: datetime, zone: tzinfo) -> str:
    """The day in the tenant's time zone, for daily limits."""
    return at.astimezone(zone).date().isoformat()


def effective_state(coupon: Coupon, now: datetime) -> CouponState:
    """The state as of now: validity over makes an unused coupon expired, and a lock past
    its expiry no longer holds the coupon."""
    state = coupon.state
    if state == CouponState.LOCKED and coupon.lock and coupon.lock.expires_at <= now:
        state = CouponState.AVAILABLE
    if state == CouponState.AVAILABLE and now >= coupon.valid_until:
        return CouponState.EXPIRED
    return state
