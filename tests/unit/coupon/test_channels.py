"""The channels' pure rules: drop rules (matching, audience, caps counted in the tenant's
days, ordinals, draws) and the claim centre's listing (what is shown, why not)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.coupon.domain import claim_centre, drops
from services.coupon.domain.batches import BatchSpec
from services.coupon.domain.coupons import Refusal
from services.coupon.domain.drops import DropRule, Trigger

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai


def rule(**fields: Any) -> DropRule:
    body: dict[str, Any] = {
        "id": "drp_0123456789abcdef",
        "name": "r",
        "trigger": "login",
        "batch_id": "bat_1",
        "probability_percent": 100,
        "max_per_day": 1,
        "active_from": NOW - timedelta(days=1),
        "active_until": NOW + timedelta(days=1),
        "created_by": "ops",
        "created_at": NOW,
        "updated_by": "ops",
        "updated_at": NOW,
        **fields,
    }
    return DropRule.model_validate(body)


def test_a_rule_matches_its_trigger_page_and_window_only() -> None:
    home = rule(trigger="page_open", page="home")
    assert drops.matches(home, Trigger.PAGE_OPEN, "home", NOW)
    assert not drops.matches(home, Trigger.PAGE_OPEN, "cart", NOW)
    assert not drops.matches(home, Trigger.LOGIN, None, NOW)
    assert drops.matches(rule(trigger="page_open"), Trigger.PAGE_OPEN, "anything", NOW)
    assert not drops.matches(rule(enabled=False), Trigger.LOGIN, None, NOW)
    assert not drops.matches(rule(), Trigger.LOGIN, None, NOW + timedelta(days=1))


def test_audiences_are_judged_by_paid_orders() -> None:
    assert drops.audience_fits(rule(audience="new_customers"), 0)
    assert not drops.audience_fits(rule(audience="new_customers"), 1)
    assert drops.audience_fits(rule(audience="returning_customers"), 2)
    assert not drops.audience_fits(rule(audience="returning_customers"), 0)
    assert drops.needs_order_history([rule(), rule(audience="new_customers")])
    assert not drops.needs_order_history([rule()])


def test_caps_count_days_in_the_tenants_time_zone() -> None:
    # 23:30 UTC yesterday is 07:30 today in Shanghai: today's drop, though yesterday in UTC.
    early_today = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    yesterday = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 yesterday in Shanghai
    daily = rule(max_per_day=1)
    assert drops.next_ordinal(daily, [yesterday], NOW, SHANGHAI) == 2
    assert drops.next_ordinal(daily, [early_today], NOW, SHANGHAI) is None
    assert drops.next_ordinal(daily, [early_today], NOW, UTC) == 2
    overall = rule(max_per_day=None, max_overall=2)
    assert drops.next_ordinal(overall, [yesterday], NOW, SHANGHAI) == 2
    assert drops.next_ordinal(overall, [yesterday, early_today], NOW, SHANGHAI) is None


def test_references_name_rule_customer_and_ordinal() -> None:
    ref = drops.reference("drp_0123456789abcdef", "wx:o-1:x", 3)
    assert ref == "drop:drp_0123456789abcdef:wx:o-1:x:3"
    assert drops.rule_of(ref) == "drp_0123456789abcdef"
    assert drops.rule_of("targeted:job_1:cus_1") is None


@given(st.floats(min_value=0, max_value=100), st.integers(min_value=0, max_value=2**32))
def test_a_draw_never_wins_at_0_and_always_wins_at_100(percent: float, seed: int) -> None:
    rng = random.Random(seed)
    assert not drops.draws(rule(probability_percent=0), rng)
    assert drops.draws(rule(probability_percent=100), rng)
    drops.draws(rule(probability_percent=percent), rng)  # any value in range is accepted


def test_a_rule_written_wrong_is_refused() -> None:
    good = rule().model_dump(exclude={"id", "created_by", "created_at", "updated_by", "updated_at"})
    for bad in (
        {"page": "home"},  # a login has no page
        {"probability_percent": -1},
        {"max_per_day": 0},
        {"max_per_day": 5, "max_overall": 2},
        {"active_until": NOW - timedelta(days=2)},
        {"active_from": datetime(2026, 1, 1)},  # no time zone
    ):
        with pytest.raises(ValidationError):
            drops.DropRuleDraft.model_validate({**good, **bad})


def spec(**fields: Any) -> BatchSpec:
    body: dict[str, Any] = {
        "key": "b",
        "name": "b",
        "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
        "claim_from": NOW - timedelta(days=1),
        "claim_until": NOW + timedelta(days=1),
        "validity": {"days_after_claim": 7},
        "stock": 10,
        "per_customer_limit": 2,
        "per_customer_daily_limit": 1,
        **fields,
    }
    return BatchSpec.model_validate(body)


def test_the_claim_centre_shows_open_fitting_listed_batches_only() -> None:
    assert claim_centre.shown(spec(), 0, NOW)
    assert not claim_centre.shown(spec(in_claim_centre=False), 0, NOW)
    assert not claim_centre.shown(spec(audience="new_customers"), 1, NOW)
    assert claim_centre.shown(spec(audience="new_customers"), 0, NOW)
    assert not claim_centre.shown(spec(claim_from=NOW + timedelta(hours=1)), 0, NOW)
    assert not claim_centre.shown(spec(claim_until=NOW), 0, NOW)


def test_why_not_puts_what_the_customer_did_before_stock() -> None:
    b = spec()
    assert claim_centre.why_not(b, 2, 0, sold_out=True) == Refusal.LIMIT_REACHED
    assert claim_centre.why_not(b, 1, 1, sold_out=True) == Refusal.DAILY_LIMIT_REACHED
    assert claim_centre.why_not(b, 1, 0, sold_out=True) == Refusal.SOLD_OUT
    assert claim_centre.why_not(b, 1, 0, sold_out=False) is None
    listed = claim_centre.listing(
        "bat_1", "cmp_1", b, [NOW - timedelta(days=1)], sold_out=False, now=NOW, zone=SHANGHAI
    )
    assert (listed.held, listed.held_today, listed.claimable) == (1, 0, True)
