"""What a coupon of an ended campaign may still cost: its most while unused and valid (or
within the lock time after), its most less what it still consumes while a refund could
bring it back, else nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.coupon.domain.batches import BatchSpec
from services.coupon.domain.coupons import Coupon, CouponState
from services.coupon.domain.holds import still_may_cost
from services.coupon.store.holds import hold_until

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LOCK = 1800


def spec(**fields: Any) -> BatchSpec:
    body: dict[str, Any] = {
        "key": "main",
        "name": "main",
        "discount": {"kind": "percent", "pay_percent": 80, "cap": 3_000},
        "claim_from": NOW - timedelta(days=1),
        "claim_until": NOW + timedelta(days=1),
        "validity": {"days_after_claim": 3},
        "stock": 10,
        **fields,
    }
    return BatchSpec.model_validate(body)


def coupon(state: CouponState, valid_until: datetime, **fields: Any) -> Coupon:
    return Coupon(
        id="cpn_1",
        batch_id="bat_1",
        campaign_id="cmp_1",
        customer_id="cus_1",
        channel="app",
        state=state,
        face_value=3_000,
        valid_from=NOW - timedelta(days=1),
        valid_until=valid_until,
        claimed_at=NOW - timedelta(days=1),
        **fields,
    )


def test_an_unused_coupon_holds_its_most_until_validity_and_lock_time_are_over() -> None:
    later, earlier = NOW + timedelta(hours=1), NOW - timedelta(minutes=10)
    assert still_may_cost(coupon(CouponState.AVAILABLE, later), spec(), None, NOW, LOCK) == 3_000
    assert still_may_cost(coupon(CouponState.LOCKED, earlier), spec(), None, NOW, LOCK) == 3_000
    gone = NOW - timedelta(hours=1)
    assert still_may_cost(coupon(CouponState.AVAILABLE, gone), spec(), None, NOW, LOCK) == 0
    assert still_may_cost(coupon(CouponState.REVOKED, later), spec(), None, NOW, LOCK) == 0


def test_a_used_coupon_holds_what_a_whole_refund_would_bring_back_on_top() -> None:
    later = NOW + timedelta(hours=1)
    used = coupon(CouponState.USED, later, discount=2_400, given_back=400)
    assert still_may_cost(used, spec(), None, NOW, LOCK) == 3_000 - 2_000
    assert still_may_cost(used, spec(return_on_refund=False), None, NOW, LOCK) == 0
    expired = coupon(CouponState.USED, NOW - timedelta(minutes=1), discount=2_400)
    assert still_may_cost(expired, spec(), None, NOW, LOCK) == 0


def test_a_return_coupon_holds_its_follow_up_until_used() -> None:
    ret = spec(discount={"kind": "return", "amount": 2_000, "threshold": 10_000,
                         "follow_up_batch": "back"})  # fmt: skip
    back = spec(key="back", discount={"kind": "threshold", "amount": 2_000, "threshold": 20_000})
    later = NOW + timedelta(hours=1)
    assert still_may_cost(coupon(CouponState.AVAILABLE, later), ret, back, NOW, LOCK) == 2_000
    used = coupon(CouponState.USED, later, discount=0)
    assert still_may_cost(used, ret, back, NOW, LOCK) == 0


def test_holds_end_after_validity_and_lock_time_rounded_up_to_a_bucket() -> None:
    until = hold_until(datetime(2026, 11, 24, 12, 0, 1, tzinfo=UTC), 60, 300)
    assert until == datetime(2026, 11, 24, 12, 5, tzinfo=UTC)
