"""What a coupon of an ended campaign may still cost, so the campaign's reservation keeps
exactly that and lets the rest go (预算释放)."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.coupon.domain.batches import BatchSpec, DiscountKind
from services.coupon.domain.coupons import Coupon, CouponState


def most_it_gives(coupon: Coupon, spec: BatchSpec, follow_up: BatchSpec | None) -> int:
    """The most the coupon can be worth: its own amount (a percent coupon's cap, a red
    packet's draw), or for a return coupon the follow-up coupon it issues."""
    if spec.discount.kind == DiscountKind.RETURN:
        return follow_up.discount.max_value() if follow_up else 0
    return coupon.face_value


def still_may_cost(
    coupon: Coupon,
    spec: BatchSpec,
    follow_up: BatchSpec | None,
    now: datetime,
    lock_seconds: int,
) -> int:
    """What the coupon may still cost the campaign from `now`:
    - unused, until its validity ends (plus the lock time, for a payment under way): its
      most;
    - used, while a whole refund could still bring it back (its batch allows it and it is
      valid): its most less what it still consumes, which the refund would give back;
    - otherwise nothing. A used return coupon's follow-up was issued: it holds for itself."""
    most = most_it_gives(coupon, spec, follow_up)
    if coupon.state in (CouponState.AVAILABLE, CouponState.LOCKED):
        return most if coupon.valid_until + timedelta(seconds=lock_seconds) > now else 0
    refundable = spec.return_on_refund and spec.discount.kind != DiscountKind.RETURN
    if coupon.state == CouponState.USED and refundable and coupon.valid_until > now:
        return max(0, most - ((coupon.discount or 0) - coupon.given_back))
    return 0
