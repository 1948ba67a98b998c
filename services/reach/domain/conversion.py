"""Conversion (转化): an order is attributed to the last touch before it within the window,
and a campaign's report compares its variants with the holdout. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

DEFAULT_WINDOW = timedelta(days=7)


class Touch(BaseModel):
    message_id: str
    at: datetime
    campaign_id: str | None = None
    rule_id: str | None = None
    variant: str | None = None


def last_touch(touches: list[Touch], paid_at: datetime, window: timedelta) -> Touch | None:
    """The latest touch at or before `paid_at` and no older than `window`."""
    eligible = [t for t in touches if paid_at - window <= t.at <= paid_at]
    return max(eligible, key=lambda t: (t.at, t.message_id), default=None)


class GroupFigures(BaseModel):
    """One variant's (or the holdout's) numbers."""

    group: str
    members: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    suppressed: int = 0
    clicked: int = 0
    conversions: int = 0
    gmv: int = 0
    conversion_rate: float = 0.0
    #: Conversion rate minus the holdout's, in percentage points (None without a holdout).
    uplift_points: float | None = None


def with_rates(groups: list[GroupFigures], holdout: str) -> list[GroupFigures]:
    rated = [
        g.model_copy(update={"conversion_rate": g.conversions / g.members if g.members else 0.0})
        for g in groups
    ]
    base = next((g for g in rated if g.group == holdout and g.members), None)
    if base is None:
        return rated
    return [
        g
        if g.group == holdout
        else g.model_copy(
            update={"uplift_points": round((g.conversion_rate - base.conversion_rate) * 100, 4)}
        )
        for g in rated
    ]
