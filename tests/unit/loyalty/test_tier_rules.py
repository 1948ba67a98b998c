"""Tier rules: an upgrade the moment growth crosses a threshold, no downgrade before the
evaluation at the end of the protection period, a warning ahead of it naming the growth
still needed, and a downgrade to the tier the window's growth reaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.loyalty.domain.tiers import MemberTier, TierScheme, add_growth, evaluate

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCHEME = TierScheme.model_validate(
    {
        "tiers": [
            {"tier_id": "silver", "name": "Silver", "threshold": 0},
            {"tier_id": "gold", "name": "Gold", "threshold": 1_000, "points_multiplier": 150},
            {"tier_id": "black", "name": "Black", "threshold": 5_000},
        ],
        "window_days": 365,
        "retention_days": 365,
        "warning_days": 30,
    }
)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_growth_upgrades_at_once_and_a_refund_does_not_downgrade() -> None:
    member, change = add_growth(MemberTier(customer_id="c"), SCHEME, 10, T0)
    assert change is not None and change.to_tier == "silver"
    member, change = add_growth(member, SCHEME, 6_000, days(1))
    assert change is not None and (change.from_tier, change.to_tier) == ("silver", "black")
    assert change.direction == "up" and member.evaluate_at == days(366)
    member, change = add_growth(member, SCHEME, -5_500, days(2))
    assert change is None and member.tier_id == "black"


def test_a_warning_before_the_evaluation_then_a_downgrade_to_the_tier_reached() -> None:
    member, _ = add_growth(MemberTier(customer_id="c"), SCHEME, 6_000, T0)
    member, _ = add_growth(member, SCHEME, 1_200, days(300))
    # The 6,000 of day 0 leaves the window before the evaluation on day 365.
    member, change, warning = evaluate(member, SCHEME, days(300))
    assert (change, warning) == (None, None)
    member, change, warning = evaluate(member, SCHEME, days(340))
    assert change is None and warning is not None
    assert (warning.tier_id, warning.growth, warning.needed) == ("black", 1_200, 3_800)
    member, _, again = evaluate(member, SCHEME, days(341))
    assert again is None  # one warning per evaluation
    member, change, _ = evaluate(member, SCHEME, days(365))
    assert change is not None and (change.to_tier, change.direction) == ("gold", "down")
    assert member.evaluate_at == days(365 + 365)


def test_enough_growth_keeps_the_tier_for_another_period() -> None:
    member, _ = add_growth(MemberTier(customer_id="c"), SCHEME, 1_500, T0)
    member, _ = add_growth(member, SCHEME, 1_000, days(200))
    member, change, warning = evaluate(member, SCHEME, days(340))
    assert (change, warning) == (None, None)
    member, change, _ = evaluate(member, SCHEME, days(365))
    assert change is None and member.tier_id == "gold" and member.evaluate_at == days(730)


def test_a_scheme_lists_tiers_lowest_first() -> None:
    with pytest.raises(ValidationError, match="lowest first"):
        TierScheme.model_validate(
            {
                "tiers": [
                    {"tier_id": "b", "name": "B", "threshold": 10},
                    {"tier_id": "a", "name": "A", "threshold": 0},
                ]
            }
        )
