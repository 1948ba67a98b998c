"""Earning rules: how many points an order earns, line by line, and how many a refund of
some of its lines takes back.

An order's points are worked out per line (amount * points per currency unit * the tier's,
the category's and the best live campaign's multipliers), so a partial refund reverses
exactly the points of the lines refunded. Caps (per order, per day) scale the lines down in
proportion; bonuses (first order, birthday) are not capped and are reversed only when the
whole order is refunded or voided. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.loyalty.domain.values import ExternalId, Name, Percent, Timestamp

#: One currency unit (yuan) in minor units (分).
CURRENCY_UNIT = 100


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Campaign(Rule):
    campaign_id: ExternalId
    multiplier: Percent = Field(description="percent: 200 earns double")
    starts_at: Timestamp
    ends_at: Timestamp
    #: Categories it applies to; empty: every line.
    categories: list[Name] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _ordered(self) -> Campaign:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def applies(self, category: str | None, at: datetime) -> bool:
        live = self.starts_at <= at < self.ends_at
        return live and (not self.categories or category in self.categories)


class EarningRule(Rule):
    """A tenant's earning rule (one per tenant)."""

    points_per_unit: int = Field(1, ge=0, le=1000, description="points per yuan spent")
    category_multipliers: dict[Name, Percent] = Field(default_factory=dict, max_length=200)
    campaigns: list[Campaign] = Field(default_factory=list, max_length=50)
    cap_per_order: int | None = Field(None, ge=0)
    cap_per_day: int | None = Field(None, ge=0)
    first_order_bonus: int = Field(0, ge=0, le=1_000_000)
    birthday_bonus: int = Field(0, ge=0, le=1_000_000)
    #: Days an order's points are held (its return window) before they can be spent.
    hold_days: int = Field(0, ge=0, le=90)
    #: Days a lot is valid once spendable.
    validity_days: int = Field(365, ge=1, le=3650)
    #: Days ahead of expiry the customer is reminded.
    remind_days_ahead: int = Field(30, ge=0, le=365)
    #: What one point is worth when paying, in 分.
    point_value: int = Field(1, ge=1, le=10_000)
    #: Paying with points: at most this share of an order (percent) and this many points.
    max_payment_share: Percent = 100
    max_payment_points: int | None = Field(None, ge=0)
    #: Whose midnight a day cap counts from.
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def day_of(self, at: datetime) -> str:
        return at.astimezone(ZoneInfo(self.timezone)).date().isoformat()

    def available_at(self, paid_at: datetime) -> datetime:
        return paid_at + timedelta(days=self.hold_days)

    def expires_at(self, available_at: datetime) -> datetime:
        return available_at + timedelta(days=self.validity_days)


class Line(BaseModel):
    """A paid line as the earning sees it."""

    line_id: str
    category: str | None = None
    amount: int


class LineEarning(BaseModel):
    line_id: str
    amount: int
    points: int
    refunded_amount: int = 0
    reversed_points: int = 0


class OrderPoints(BaseModel):
    lines: list[LineEarning]
    bonus: int
    bonuses: list[str] = []

    @property
    def total(self) -> int:
        return sum(line.points for line in self.lines) + self.bonus


def line_points(rule: EarningRule, line: Line, *, tier_multiplier: int, at: datetime) -> Fraction:
    """Exact (unrounded) points of one line; the best campaign applies, not all of them."""
    category = rule.category_multipliers.get(line.category or "", 100) if line.category else 100
    campaign = max(
        (c.multiplier for c in rule.campaigns if c.applies(line.category, at)), default=100
    )
    base = Fraction(line.amount * rule.points_per_unit, CURRENCY_UNIT)
    return base * Fraction(tier_multiplier, 100) * Fraction(category, 100) * Fraction(campaign, 100)


def capped(exact: list[Fraction], cap: int | None) -> list[int]:
    """Whole points per line, at most `cap` in all: scaled in proportion when over, the
    leftover points going to the largest remainders (so lines sum exactly to the cap)."""
    total = sum(exact, Fraction(0))
    if cap is None or total <= cap:
        return [int(x) for x in exact]  # floor: a fraction of a point is not earned
    shares = [x * cap / total for x in exact]
    whole = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - whole[i], reverse=True)
    for i in by_remainder[: cap - sum(whole)]:
        whole[i] += 1
    return whole


def order_points(
    rule: EarningRule,
    lines: list[Line],
    *,
    at: datetime,
    tier_multiplier: int = 100,
    earned_today: int = 0,
    first_order: bool = False,
    birthday: bool = False,
) -> OrderPoints:
    exact = [line_points(rule, line, tier_multiplier=tier_multiplier, at=at) for line in lines]
    caps = [rule.cap_per_order]
    if rule.cap_per_day is not None:
        caps.append(max(rule.cap_per_day - earned_today, 0))
    cap = min((c for c in caps if c is not None), default=None)
    points = capped(exact, cap)
    bonuses = [
        name
        for name, due, amount in (
            ("first_order", first_order, rule.first_order_bonus),
            ("birthday", birthday, rule.birthday_bonus),
        )
        if due and amount
    ]
    bonus = (rule.first_order_bonus if "first_order" in bonuses else 0) + (
        rule.birthday_bonus if "birthday" in bonuses else 0
    )
    earned = [
        LineEarning(line_id=line.line_id, amount=line.amount, points=p)
        for line, p in zip(lines, points, strict=True)
    ]
    return OrderPoints(lines=earned, bonus=bonus, bonuses=bonuses)


def refund_points(line: LineEarning, refunded_amount: int) -> tuple[LineEarning, int]:
    """The line after `refunded_amount` more of it is refunded, and the points that takes
    back. Counted on the running total, so refunding a line in parts reverses exactly its
    points once all of it is refunded."""
    refunded = min(line.refunded_amount + refunded_amount, line.amount)
    due = line.points * refunded // line.amount if line.amount else line.points
    taken = due - line.reversed_points
    after = line.model_copy(update={"refunded_amount": refunded, "reversed_points": due})
    return after, taken
