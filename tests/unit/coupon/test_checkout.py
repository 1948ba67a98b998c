"""Which coupons apply to an order and what each gives; budget ledger arithmetic; campaign
steps; rate-limit windows. No I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from servicekit.errors import Conflict
from services.coupon.domain import budgets, campaigns
from services.coupon.domain.batches import BatchSpec, MarginPolicy
from services.coupon.domain.checkout import OrderDraft, best_first, offer
from services.coupon.domain.coupons import (
    Coupon,
    CouponState,
    Lock,
    Refusal,
    audience_refusal,
    claim_window_refusal,
    effective_state,
    face_value,
    local_day,
)
from services.coupon.domain.rate_limits import Limit, judge

ZONE = ZoneInfo("Asia/Shanghai")
# A Wednesday, 10:00 in Shanghai.
NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
POLICY = MarginPolicy()


def spec(**fields: Any) -> BatchSpec:
    base: dict[str, Any] = {
        "key": "k",
        "name": "k",
        "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
        "claim_from": NOW - timedelta(days=1),
        "claim_until": NOW + timedelta(days=1),
        "validity": {"days_after_claim": 7},
        "stock": 10,
    }
    return BatchSpec.model_validate({**base, **fields})


def coupon(face: int = 1_000, **fields: Any) -> Coupon:
    base: dict[str, Any] = {
        "id": "cpn_1",
        "batch_id": "bat_1",
        "campaign_id": "cmp_1",
        "customer_id": "cus_1",
        "channel": "app",
        "state": "available",
        "face_value": face,
        "valid_from": NOW - timedelta(hours=1),
        "valid_until": NOW + timedelta(days=1),
        "claimed_at": NOW - timedelta(hours=1),
    }
    return Coupon.model_validate({**base, **fields})


def order(*lines: dict[str, Any], shipping_fee: int = 0) -> OrderDraft:
    default = {
        "line_id": "1",
        "product_id": "p1",
        "category": "shoes",
        "price": 12_000,
        "quantity": 1,
    }
    return OrderDraft.model_validate(
        {
            "order_id": "o1",
            "lines": [{**default, **ln} for ln in lines] or [default],
            "shipping_fee": shipping_fee,
        }
    )


def give(s: BatchSpec, c: Coupon, o: OrderDraft, paid_orders: int = 0, now: datetime = NOW) -> Any:
    return offer(s, c, o, paid_orders=paid_orders, now=now, zone=ZONE, policy=POLICY)


def test_threshold_percent_and_direct_discounts() -> None:
    assert give(spec(), coupon(), order()).discount == 1_000
    pct = spec(discount={"kind": "percent", "pay_percent": 80, "cap": 2_000})
    assert give(pct, coupon(2_000), order()).discount == 2_000  # 20% of 12,000 capped
    assert give(pct, coupon(2_000), order({"price": 5_000})).discount == 1_000
    assert give(spec(), coupon(), order({"price": 9_999})).reason == "below_threshold"


def test_scope_and_platform_pick_the_eligible_lines() -> None:
    lines = [
        {"line_id": "1", "product_id": "p1", "category": "shoes", "price": 8_000},
        {
            "line_id": "2",
            "product_id": "p2",
            "category": "bags",
            "price": 4_000,
            "self_operated": False,
            "merchant_id": "m1",
        },
    ]
    shoes = spec(scope={"kind": "categories", "categories": ["shoes"]})
    assert give(shoes, coupon(), order(*lines)).reason == "below_threshold"  # 8,000 < 10,000
    own = spec(
        platform={"kind": "self_operated"},
        discount={"kind": "threshold", "amount": 500, "threshold": 5_000},
    )
    assert give(own, coupon(500), order(*lines)).discount == 500
    merchant = spec(
        platform={"kind": "merchant", "merchant_id": "m1"},
        discount={"kind": "threshold", "amount": 500, "threshold": 5_000},
    )
    assert give(merchant, coupon(500), order(*lines)).reason == "below_threshold"
    product = spec(scope={"kind": "products", "product_ids": ["p9"]})
    assert give(product, coupon(), order(*lines)).reason == "no_eligible_items"


def test_shipping_coupons_discount_the_fee_only() -> None:
    ship = spec(scope={"kind": "shipping"}, discount={"kind": "direct", "amount": 800})
    assert give(ship, coupon(800), order(shipping_fee=500)).discount == 500
    assert give(ship, coupon(800), order()).reason == "no_shipping_fee"


def test_days_hours_validity_and_first_order() -> None:
    assert give(spec(usable_weekdays=[6, 7]), coupon(), order()).reason == "wrong_day"
    assert give(spec(usable_weekdays=[3]), coupon(), order()).reason is None
    assert (
        give(spec(usable_hours={"from_hour": 18, "to_hour": 22}), coupon(), order()).reason
        == "wrong_hour"
    )
    assert (
        give(spec(), coupon(valid_from=NOW + timedelta(hours=1)), order()).reason == "not_yet_valid"
    )
    assert give(spec(), coupon(valid_until=NOW), order()).reason == "expired"
    first = spec(audience="first_order")
    assert give(first, coupon(), order(), paid_orders=1).reason == "not_first_order"
    assert give(first, coupon(), order(), paid_orders=0).reason is None


def test_line_costs_refuse_a_discount_that_leaves_too_thin_a_margin() -> None:
    assert give(spec(), coupon(), order({"cost": 10_500})).reason == "margin_too_low"
    assert give(spec(), coupon(), order({"cost": 9_000})).reason is None


def test_offers_are_best_first() -> None:
    a = give(spec(), coupon(1_000, id="a"), order())
    b = give(spec(), coupon(3_000, id="b"), order())
    c = give(spec(), coupon(3_000, id="c"), order({"price": 1}))
    applicable, others = best_first([a, b, c])
    assert [o.coupon_id for o in applicable] == ["b", "a"] and [o.coupon_id for o in others] == [
        "c"
    ]


def test_effective_state_applies_expiry_and_lapsed_locks() -> None:
    lapsed = Lock(order_id="o", discount=1, expires_at=NOW - timedelta(seconds=1))
    assert effective_state(coupon(state="locked", lock=lapsed), NOW) == CouponState.AVAILABLE
    assert effective_state(coupon(valid_until=NOW), NOW) == CouponState.EXPIRED
    assert effective_state(coupon(state="used", valid_until=NOW), NOW) == CouponState.USED


def test_claim_rules_window_audience_red_packets_and_local_days() -> None:
    assert claim_window_refusal(spec(), NOW) is None
    assert (
        claim_window_refusal(spec(claim_from=NOW + timedelta(seconds=1)), NOW)
        == Refusal.CLAIM_NOT_OPEN
    )
    assert claim_window_refusal(spec(claim_until=NOW), NOW) == Refusal.CLAIM_CLOSED
    assert audience_refusal(spec(audience="new_customers"), 1) == Refusal.NOT_NEW_CUSTOMER
    assert audience_refusal(spec(), 5) is None
    red = spec(
        discount={"kind": "random", "min_amount": 100, "max_amount": 200, "threshold": 10_000}
    )
    drawn = {face_value(red, random.Random(n)) for n in range(50)}
    assert min(drawn) >= 100 and max(drawn) <= 200 and len(drawn) > 1
    # 23:30 UTC is already the next day in Shanghai.
    assert local_day(datetime(2026, 11, 10, 23, 30, tzinfo=UTC), ZONE) == "2026-11-11"


def test_the_ledger_explains_the_budget() -> None:
    draft = budgets.BudgetDraft(
        name="b",
        owner_kind="department",
        owner="growth",
        amount=1_000,
        starts_at=NOW,
        ends_at=NOW + timedelta(days=1),
    )
    budget = budgets.opened("bud_1", draft, now=NOW)
    entries = [
        budgets.LedgerEntry(id="1", budget_id="bud_1", movement="opened", amount=1_000, at=NOW)
    ]
    assert budgets.explained(budget, entries)
    moved = budget.model_copy(update={"reserved": 300, "consumed": 100, "remaining": 600})
    entries += [
        budgets.LedgerEntry(id="2", budget_id="bud_1", movement="reserve", amount=400, at=NOW),
        budgets.LedgerEntry(id="3", budget_id="bud_1", movement="consume", amount=100, at=NOW),
    ]
    assert budgets.explained(moved, entries)
    assert not budgets.explained(moved, entries[:2])
    assert budgets.crossed_thresholds(moved.model_copy(update={"consumed": 500})) == [80]


def test_campaign_steps_follow_the_state_machine() -> None:
    draft = campaigns.CampaignDraft(name="c", budget_id="bud_1", batches=[spec()])
    c = campaigns.drafted("cmp_1", draft, by="ops", now=NOW)
    assert c.max_subsidy == 10_000
    c = campaigns.step(c, campaigns.Step.SUBMIT, by="ops", now=NOW)
    with pytest.raises(Conflict):
        campaigns.step(c, campaigns.Step.START, by="ops", now=NOW)
    c = campaigns.step(c, campaigns.Step.APPROVE, by="boss", now=NOW)
    assert [h.by for h in c.history] == ["ops", "boss"]


def test_rate_limit_windows_positions_and_retry_after() -> None:
    limit = Limit("customer", "cus_1", 3, 60)
    at = datetime(2026, 11, 11, 0, 0, 50, tzinfo=UTC)
    assert judge([limit], [3], at).allowed
    verdict = judge([limit], [4], at)
    assert not verdict.allowed and verdict.retry_after == 10
    assert limit.counter_id("t", at) != limit.counter_id("t", at + timedelta(seconds=10))
