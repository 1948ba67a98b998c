"""Batch configuration rules and the margin check, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from servicekit.errors import InvalidInput
from services.coupon.domain.batches import (
    BatchSpec,
    Discount,
    MarginPolicy,
    Scope,
    check_batch,
    check_campaign_batches,
    margin_problem,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = MarginPolicy(min_margin_percent=5, cost_ratio_percent=70)


def spec(**fields: Any) -> BatchSpec:
    base: dict[str, Any] = {
        "key": "main",
        "name": "main",
        "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
        "claim_from": T0,
        "claim_until": T0 + timedelta(days=10),
        "validity": {"days_after_claim": 7},
        "stock": 100,
    }
    return BatchSpec.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("discount", "message"),
    [
        ({"kind": "direct"}, "needs amount"),
        ({"kind": "threshold", "amount": 100}, "threshold above 0"),
        ({"kind": "percent", "pay_percent": 80}, "needs cap"),
        ({"kind": "random", "min_amount": 500, "max_amount": 100}, "must not exceed"),
        ({"kind": "return", "amount": 100, "threshold": 1000}, "follow_up_batch"),
    ],
)
def test_each_discount_kind_needs_its_fields(discount: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Discount.model_validate(discount)


def test_max_value_is_what_one_coupon_can_give_at_most() -> None:
    assert Discount(kind="percent", pay_percent=80, cap=3_000).max_value() == 3_000
    assert Discount(kind="random", min_amount=100, max_amount=888).max_value() == 888
    follow = {"follow_up_batch": "b", "threshold": 100}
    assert Discount(kind="return", amount=50, **follow).max_value() == 0
    assert spec(stock=7).max_subsidy() == 7_000


def test_a_claim_window_is_at_most_90_days() -> None:
    check_batch(spec(claim_until=T0 + timedelta(days=90)), POLICY)
    with pytest.raises(InvalidInput) as caught:
        check_batch(spec(claim_until=T0 + timedelta(days=91)), POLICY)
    assert caught.value.code == "claim_window"


def test_validity_is_days_after_claim_up_to_7_or_a_fixed_window() -> None:
    with pytest.raises(ValidationError):
        spec(validity={"days_after_claim": 8})
    with pytest.raises(ValidationError, match="give days_after_claim"):
        spec(validity={"days_after_claim": 3, "valid_from": T0, "valid_until": T0})
    fixed = spec(validity={"valid_from": T0, "valid_until": T0 + timedelta(days=30)})
    assert fixed.validity.window(T0 + timedelta(days=2)) == (T0, T0 + timedelta(days=30))
    relative = spec().validity.window(T0)
    assert relative == (T0, T0 + timedelta(days=7))
    with pytest.raises(InvalidInput, match="ends before claiming starts"):
        check_batch(
            spec(validity={"valid_from": T0 - timedelta(days=9), "valid_until": T0}), POLICY
        )


def test_limits_days_and_hours_are_checked() -> None:
    with pytest.raises(InvalidInput, match="daily limit exceeds"):
        check_batch(spec(per_customer_limit=1, per_customer_daily_limit=2), POLICY)
    with pytest.raises(ValidationError, match="usable_weekdays"):
        spec(usable_weekdays=[0])
    with pytest.raises(ValidationError, match="to_hour"):
        spec(usable_hours={"from_hour": 10, "to_hour": 9})
    with pytest.raises(ValidationError, match="merchant_id"):
        spec(platform={"kind": "merchant"})
    with pytest.raises(ValidationError, match="product_ids"):
        spec(scope={"kind": "products"})


@pytest.mark.parametrize(
    ("discount", "problem"),
    [
        ({"kind": "direct", "amount": 1_000}, "zero price"),  # no minimum order
        ({"kind": "threshold", "amount": 1_000, "threshold": 1_000}, "zero price"),
        ({"kind": "threshold", "amount": 3_000, "threshold": 10_000}, "margin of 0.0%"),
        ({"kind": "percent", "pay_percent": 70, "cap": 100}, "margin"),
        ({"kind": "threshold", "amount": 2_000, "threshold": 10_000}, None),  # 12.5%
        ({"kind": "percent", "pay_percent": 80, "cap": 100}, None),
        ({"kind": "random", "min_amount": 100, "max_amount": 5_000, "threshold": 6_000}, "margin"),
    ],
)
def test_the_margin_check_rejects_zero_price_or_thin_margins(
    discount: dict, problem: str | None
) -> None:
    found = margin_problem(Discount.model_validate(discount), Scope(), POLICY)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_shipping_coupons_do_not_touch_the_goods_margin() -> None:
    shipping = Scope(kind="shipping")
    assert margin_problem(Discount(kind="direct", amount=800), shipping, POLICY) is None


def test_a_failed_margin_check_names_the_field_and_reason() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_batch(spec(discount={"kind": "direct", "amount": 500}), POLICY, field="batches.0")
    assert caught.value.code == "margin_check_failed"
    assert caught.value.extra["errors"][0]["field"] == "batches.0.discount"


def test_campaign_batches_have_distinct_keys_and_real_follow_ups() -> None:
    with pytest.raises(InvalidInput, match="distinct"):
        check_campaign_batches([spec(), spec()], POLICY)
    ret = spec(
        key="ret",
        discount={"kind": "return", "amount": 500, "threshold": 10_000, "follow_up_batch": "nope"},
    )
    with pytest.raises(InvalidInput, match="another batch"):
        check_campaign_batches([ret, spec()], POLICY)
    ok = ret.model_copy(
        update={"discount": ret.discount.model_copy(update={"follow_up_batch": "main"})}
    )
    check_campaign_batches([ok, spec()], POLICY)
