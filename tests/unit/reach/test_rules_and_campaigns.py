"""Rules' conditions and timing, variant assignment and holdout, throttling, the circuit
breaker, last-touch attribution and uplift."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reach.domain.breaker import BreakerState, CircuitBreaker
from services.reach.domain.campaigns import Audience, Campaign, Variant, assign, throttle_wait
from services.reach.domain.channels import Channel
from services.reach.domain.conversion import GroupFigures, Touch, last_touch, with_rates
from services.reach.domain.rules import (
    Condition,
    Op,
    Rule,
    Trigger,
    holds,
    send_time,
    too_late,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def rule(trigger: Trigger = Trigger.COUPON_CLAIMED, **fields: object) -> Rule:
    return Rule(
        tenant="t",
        rule_id="r1",
        name="r",
        trigger=trigger,
        channel=Channel.SMS,
        template_id="x",
        template_version=1,
        created_by="ops",
        created_at=NOW,
        **fields,  # type: ignore[arg-type]
    )


def test_conditions_must_all_hold_and_a_missing_fact_fails() -> None:
    r = rule(
        conditions=[
            Condition(field="face_value", op=Op.GTE, value=1000),
            Condition(field="channel", op=Op.IN, value=["app", "store"]),
        ]
    )
    assert holds(r, {"face_value": 1000, "channel": "app"})
    assert not holds(r, {"face_value": 999, "channel": "app"})
    assert not holds(r, {"channel": "app"})
    assert not holds(rule(conditions=[Condition(field="x", op=Op.GT, value=1)]), {"x": "text"})


def test_send_time_after_a_delay_or_ahead_of_expiry() -> None:
    assert send_time(rule(delay_seconds=3600), NOW) == NOW + timedelta(hours=1)
    expiring = rule(Trigger.COUPON_EXPIRING, before_expiry_seconds=86_400)
    assert send_time(expiring, NOW, NOW + timedelta(days=3)) == NOW + timedelta(days=2)
    # Noticed within the day before the end: at once, never before the notice.
    assert send_time(expiring, NOW, NOW + timedelta(hours=20)) == NOW
    on_notice = rule(Trigger.COUPON_EXPIRING)
    assert send_time(on_notice, NOW, NOW + timedelta(hours=20)) == NOW


def test_a_reminder_due_at_or_after_the_end_is_too_late() -> None:
    end = NOW + timedelta(hours=20)
    assert not too_late(NOW, end) and not too_late(NOW, None)
    assert too_late(end, end) and too_late(end + timedelta(seconds=1), end)


def test_before_expiry_is_for_expiring_rules_and_not_with_a_delay() -> None:
    for bad in (
        {"trigger": Trigger.COUPON_CLAIMED, "before_expiry_seconds": 60},
        {"trigger": Trigger.COUPON_EXPIRING, "before_expiry_seconds": 60, "delay_seconds": 60},
    ):
        with pytest.raises(ValueError):
            rule(**bad)  # type: ignore[arg-type]


def campaign(holdout: float, *weights: int) -> Campaign:
    return Campaign(
        tenant="t",
        campaign_id="cmp_1",
        name="c",
        channel=Channel.SMS,
        audience=Audience(segment_id="seg_1"),
        variants=[
            Variant(variant_id=f"V{i}", template_id="x", template_version=1, weight=w)
            for i, w in enumerate(weights)
        ],
        holdout_percent=holdout,
        send_at=NOW,
        created_by="ops",
        created_at=NOW,
    )


def test_assignment_is_stable_and_follows_weights_and_holdout() -> None:
    c = campaign(10, 1, 3)
    groups = Counter(
        (v.variant_id if (v := assign(c, f"cus_{i}")) else "holdout") for i in range(20_000)
    )
    assert 1_700 < groups["holdout"] < 2_300
    assert 4_000 < groups["V0"] < 5_000 and 13_000 < groups["V1"] < 14_000
    assert all(assign(c, f"cus_{i}") == assign(c, f"cus_{i}") for i in range(100))


def test_throttle() -> None:
    assert throttle_wait(100, 0.5, 100) == 0.5
    assert throttle_wait(100, 2.0, 100) == 0.0


def test_breaker_opens_after_failures_then_tries_once() -> None:
    b = CircuitBreaker(threshold=2, cool_down=10)
    b.failed(0)
    assert b.allow(1)
    b.failed(1)
    assert b.state(2) is BreakerState.OPEN and not b.allow(2)
    assert b.allow(12) and not b.allow(12)  # one trial at a time
    b.failed(12)
    assert not b.allow(13)
    assert b.allow(23)
    b.succeeded()
    assert b.state(23) is BreakerState.CLOSED


def test_last_touch_within_the_window() -> None:
    touches = [
        Touch(message_id="m1", at=NOW - timedelta(days=8)),
        Touch(message_id="m2", at=NOW - timedelta(days=2), campaign_id="c", variant="A"),
        Touch(message_id="m3", at=NOW - timedelta(days=1), campaign_id="c", variant="holdout"),
        Touch(message_id="m4", at=NOW + timedelta(minutes=1)),
    ]
    assert last_touch(touches, NOW, timedelta(days=7)).message_id == "m3"  # type: ignore[union-attr]
    assert last_touch(touches[:1], NOW, timedelta(days=7)) is None


def test_uplift_against_the_holdout() -> None:
    rated = with_rates(
        [
            GroupFigures(group="A", members=100, conversions=12),
            GroupFigures(group="holdout", members=50, conversions=2),
        ],
        "holdout",
    )
    a, h = rated
    assert a.conversion_rate == 0.12 and h.conversion_rate == 0.04 and a.uplift_points == 8.0
    assert h.uplift_points is None


@given(
    st.lists(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)), max_size=20
    )
)
def test_last_touch_is_never_after_the_order_nor_older_than_the_window(ats: list[datetime]) -> None:
    touches = [Touch(message_id=f"m{i}", at=a.replace(tzinfo=UTC)) for i, a in enumerate(ats)]
    paid = datetime(2026, 7, 1, tzinfo=UTC)
    found = last_touch(touches, paid, timedelta(days=7))
    eligible = [t for t in touches if paid - timedelta(days=7) <= t.at <= paid]
    assert (found is None) == (not eligible)
    if found:
        assert found.at == max(t.at for t in eligible)
