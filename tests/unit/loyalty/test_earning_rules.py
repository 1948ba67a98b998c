"""Earning rules: line points with tier, category and campaign multipliers; caps scale
lines to the cap exactly; bonuses; refunds reverse exactly the refunded lines' points,
in parts adding up to the line's points; a void takes back the rest and the bonuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.loyalty.domain import orders
from services.loyalty.domain.earning import (
    Campaign,
    EarningRule,
    Line,
    capped,
    order_points,
)

AT = datetime(2026, 5, 1, 12, tzinfo=UTC)


def rule(**fields: object) -> EarningRule:
    return EarningRule.model_validate(fields)


def test_points_per_yuan_with_tier_category_and_the_best_campaign() -> None:
    campaigns = [
        Campaign(
            campaign_id="c1", multiplier=150, starts_at=AT - timedelta(1), ends_at=AT + timedelta(1)
        ),
        Campaign(
            campaign_id="c2",
            multiplier=300,
            starts_at=AT - timedelta(1),
            ends_at=AT + timedelta(1),
            categories=["tea"],
        ),
        Campaign(
            campaign_id="old",
            multiplier=900,
            starts_at=AT - timedelta(9),
            ends_at=AT - timedelta(1),
        ),
    ]
    r = rule(points_per_unit=2, category_multipliers={"tea": 200}, campaigns=campaigns)
    lines = [Line(line_id="a", category="tea", amount=1_000), Line(line_id="b", amount=1_050)]
    earned = order_points(r, lines, at=AT, tier_multiplier=150)
    # a: 10 yuan x2 x1.5 tier x2 category x3 campaign = 180; b: 10.5 x2 x1.5 x1.5 = 47.25
    assert [line.points for line in earned.lines] == [180, 47]


def test_caps_scale_lines_to_the_cap_exactly() -> None:
    r = rule(cap_per_order=100, cap_per_day=150)
    lines = [Line(line_id=str(i), amount=a) for i, a in enumerate([10_000, 5_000, 5_000])]
    assert sum(line.points for line in order_points(r, lines, at=AT).lines) == 100
    tail = order_points(r, lines, at=AT, earned_today=120)
    assert sum(line.points for line in tail.lines) == 30
    assert [line.points for line in order_points(r, lines, at=AT, earned_today=500).lines] == [
        0,
        0,
        0,
    ]


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=20), st.integers(0, 10**5))
def test_capped_never_exceeds_the_cap_and_hits_it_when_over(amounts: list[int], cap: int) -> None:
    from fractions import Fraction

    exact = [Fraction(a, 7) for a in amounts]
    whole = capped(exact, cap)
    assert all(w >= 0 for w in whole)
    assert sum(whole) == min(cap, sum(whole)) and sum(whole) <= max(cap, sum(int(x) for x in exact))
    if sum(exact) > cap:
        assert sum(whole) == cap


def test_bonuses_are_added_outside_the_cap() -> None:
    r = rule(cap_per_order=10, first_order_bonus=100, birthday_bonus=66)
    lines = [Line(line_id="a", amount=100_000)]
    earned = order_points(r, lines, at=AT, first_order=True, birthday=True)
    assert earned.total == 176 and earned.bonuses == ["first_order", "birthday"]


def earning(*line_amounts: int, bonus: int = 0) -> orders.OrderEarning:
    lines = [Line(line_id=f"L{i}", amount=a) for i, a in enumerate(line_amounts)]
    points = order_points(rule(first_order_bonus=bonus), lines, at=AT, first_order=bool(bonus))
    total = sum(line_amounts)
    return orders.earned("SO", "cus", total, AT, points, held=False, growth=total // 100)


@given(st.lists(st.integers(1, 5_000), min_size=1, max_size=8))
def test_refunding_a_line_in_parts_reverses_exactly_its_points(parts: list[int]) -> None:
    record = earning(sum(parts), 1_000)
    taken = 0
    for i, part in enumerate(parts):
        record, reversal = orders.refund(record, f"R{i}", {"L0": part}, fully_refunded=False)
        taken += reversal.points
        assert reversal.line_ids == ["L0"]
    assert taken == record.lines[0].points
    assert record.lines[1].reversed_points == 0


def test_a_full_refund_takes_the_bonus_and_a_void_takes_the_rest() -> None:
    record = earning(10_000, 5_000, bonus=50)
    record, first = orders.refund(record, "R1", {"L0": 10_000}, fully_refunded=False)
    assert first.points == 100 and first.growth == 100
    record, rest = orders.void(record)
    assert rest.points == 50 + 50 and rest.growth == 50
    assert record.voided and record.bonus_reversed
