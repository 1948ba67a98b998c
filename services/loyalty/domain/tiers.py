"""Tiers (等级) by growth value (成长值).

Growth value counts over a rolling window (e.g. the last 365 days), from spend or from
points as the tenant chooses. Crossing a higher tier's threshold upgrades at once; a tier
is kept for a protection period (保级) after it is reached, then evaluated: growth in the
window below the tier's threshold moves the member down to the tier it does reach. Ahead of
an evaluation that would downgrade, a warning says how much growth keeps the tier. Pure.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.loyalty.domain.values import ExternalId, Name, Percent


class GrowthBasis(StrEnum):
    SPEND = "spend"  # one growth value per yuan paid
    POINTS = "points"  # one growth value per point earned from orders


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tier_id: ExternalId
    name: Name
    threshold: int = Field(ge=0, le=10**9)
    points_multiplier: Percent = 100
    benefits: list[ExternalId] = Field(default_factory=list, max_length=50)


class TierScheme(BaseModel):
    """A tenant's tiers, lowest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: list[Tier] = Field(min_length=1, max_length=20)
    growth_basis: GrowthBasis = GrowthBasis.SPEND
    window_days: int = Field(365, ge=1, le=3650)
    retention_days: int = Field(365, ge=1, le=3650)
    warning_days: int = Field(30, ge=0, le=365)

    @model_validator(mode="after")
    def _ascending(self) -> TierScheme:
        thresholds = [t.threshold for t in self.tiers]
        if thresholds != sorted(set(thresholds)) or len(set(thresholds)) != len(thresholds):
            raise ValueError("tiers must be listed lowest first with distinct thresholds")
        if len({t.tier_id for t in self.tiers}) != len(self.tiers):
            raise ValueError("tier ids must be distinct")
        return self

    def rank(self, tier_id: str | None) -> int:
        ids = [t.tier_id for t in self.tiers]
        return ids.index(tier_id) if tier_id in ids else -1

    def tier(self, tier_id: str | None) -> Tier | None:
        return next((t for t in self.tiers if t.tier_id == tier_id), None)

    def reached(self, growth: int) -> Tier | None:
        return next((t for t in reversed(self.tiers) if t.threshold <= growth), None)


class MemberTier(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    tier_id: str | None = None
    #: Growth value per UTC day, inside the window only.
    growth_by_day: dict[str, int] = {}
    lifetime_growth: int = 0
    tier_since: datetime | None = None
    #: The end of the protection period: the next evaluation.
    evaluate_at: datetime | None = None
    #: The evaluation a warning was sent for (one warning per evaluation).
    warned_for: datetime | None = None
    version: int = 0

    def growth_since(self, start: date) -> int:
        return sum(v for day, v in self.growth_by_day.items() if date.fromisoformat(day) > start)

    def window_growth(self, scheme: TierScheme, at: datetime) -> int:
        return self.growth_since((at - timedelta(days=scheme.window_days)).date())

    def next_due_at(self, scheme: TierScheme) -> datetime | None:
        if self.evaluate_at is None:
            return None
        warn_at = self.evaluate_at - timedelta(days=scheme.warning_days)
        return self.evaluate_at if self.warned_for == self.evaluate_at else warn_at


class TierChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    from_tier: str | None
    to_tier: str | None
    direction: str  # "up" or "down"
    reason: str
    growth: int
    at: datetime


class TierWarning(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    tier_id: str
    growth: int
    needed: int
    evaluate_at: datetime


def _move(
    member: MemberTier, scheme: TierScheme, to: Tier | None, reason: str, growth: int, at: datetime
) -> tuple[MemberTier, TierChange]:
    up = scheme.rank(to.tier_id if to else None) > scheme.rank(member.tier_id)
    change = TierChange(
        customer_id=member.customer_id,
        from_tier=member.tier_id,
        to_tier=to.tier_id if to else None,
        direction="up" if up else "down",
        reason=reason,
        growth=growth,
        at=at,
    )
    after = member.model_copy(
        update={
            "tier_id": change.to_tier,
            "tier_since": at,
            "evaluate_at": at + timedelta(days=scheme.retention_days),
            "warned_for": None,
        }
    )
    return after, change


def add_growth(
    member: MemberTier, scheme: TierScheme, amount: int, at: datetime
) -> tuple[MemberTier, TierChange | None]:
    """Growth value gained (or, negative, taken back by a refund). Upgrades at once; a loss
    never downgrades here: that waits for the evaluation."""
    day = at.date().isoformat()
    cutoff = (at - timedelta(days=scheme.window_days)).date()
    by_day = {d: v for d, v in member.growth_by_day.items() if date.fromisoformat(d) > cutoff}
    by_day[day] = by_day.get(day, 0) + amount
    member = member.model_copy(
        update={"growth_by_day": by_day, "lifetime_growth": member.lifetime_growth + amount}
    )
    growth = member.window_growth(scheme, at)
    reached = scheme.reached(growth)
    if reached and scheme.rank(reached.tier_id) > scheme.rank(member.tier_id):
        return _move(member, scheme, reached, "threshold_reached", growth, at)
    return member, None


def evaluate(
    member: MemberTier, scheme: TierScheme, now: datetime
) -> tuple[MemberTier, TierChange | None, TierWarning | None]:
    """What is due by `now`: the evaluation (keep or move down), or the warning before it."""
    if member.evaluate_at is None or member.tier_id is None:
        return member, None, None
    current = scheme.tier(member.tier_id)
    if now >= member.evaluate_at:
        growth = member.window_growth(scheme, now)
        reached = scheme.reached(growth)
        if current is None or scheme.rank(reached and reached.tier_id) < scheme.rank(
            member.tier_id
        ):
            after, change = _move(member, scheme, reached, "evaluation", growth, now)
            return after, change, None
        kept = member.model_copy(
            update={"evaluate_at": now + timedelta(days=scheme.retention_days), "warned_for": None}
        )
        return kept, None, None
    warn_from = member.evaluate_at - timedelta(days=scheme.warning_days)
    if now < warn_from or member.warned_for == member.evaluate_at or current is None:
        return member, None, None
    # Growth still inside the window on the evaluation day is what will count.
    growth = member.window_growth(scheme, member.evaluate_at)
    marked = member.model_copy(update={"warned_for": member.evaluate_at})
    if growth >= current.threshold:
        return marked, None, None
    warning = TierWarning(
        customer_id=member.customer_id,
        tier_id=current.tier_id,
        growth=growth,
        needed=current.threshold - growth,
        evaluate_at=member.evaluate_at,
    )
    return marked, None, warning
