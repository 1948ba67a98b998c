"""On-site drops (站内投放, 天降红包): rules that decide, when a customer logs in or opens a
page, whether a coupon of a batch drops into their wallet. Pure: no I/O.

A rule matches a trigger (and, for page opens, optionally one page), an audience (new
customers: no paid order yet; returning; anyone) and its active window. A matching rule
draws with its probability, within its caps per customer: per day (tenant's time zone) and
overall. Each drop's reference names the rule, the customer and the drop's ordinal among
that customer's drops of the rule; grants are idempotent by reference, so concurrent checks
that saw the same drops take the same ordinal and give one coupon between them, which keeps
both caps exact under any interleaving."""

from __future__ import annotations

import random
from datetime import datetime, tzinfo
from enum import StrEnum

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.coupons import local_day

PAGE_PATTERN = r"^[a-z0-9][a-z0-9_./-]{0,63}$"
OCCASION_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
#: The channel every dropped coupon records.
CHANNEL = "onsite_drop"


class Trigger(StrEnum):
    LOGIN = "login"
    PAGE_OPEN = "page_open"


class DropAudience(StrEnum):
    ANYONE = "anyone"
    NEW_CUSTOMERS = "new_customers"  # no paid order yet
    RETURNING_CUSTOMERS = "returning_customers"


class DropRuleDraft(BaseModel):
    """A drop rule as ops write it (create, or replace whole)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    trigger: Trigger
    #: Page opens only: the page key it drops on (None: any page).
    page: str | None = Field(None, pattern=PAGE_PATTERN)
    batch_id: str = Field(pattern=ID_PATTERN)
    audience: DropAudience = DropAudience.ANYONE
    #: The chance a matching check drops, in percent (0 pauses the rule, 100 always drops).
    probability_percent: float = Field(ge=0, le=100)
    #: Caps per customer: drops per day (tenant's time zone) and in all (None: no cap;
    #: the batch's own per-customer limits apply as well).
    max_per_day: int | None = Field(1, ge=1, le=100)
    max_overall: int | None = Field(None, ge=1, le=1000)
    active_from: AwareDatetime
    active_until: AwareDatetime
    enabled: bool = True

    @field_validator("active_from", "active_until")
    @classmethod
    def _store_precision(cls, at: datetime) -> datetime:
        """Milliseconds, as the store keeps them, so a rule reads back as written."""
        return at.replace(microsecond=at.microsecond // 1000 * 1000)

    @model_validator(mode="after")
    def _consistent(self) -> DropRuleDraft:
        if self.page is not None and self.trigger != Trigger.PAGE_OPEN:
            raise ValueError("page is given only for a page_open trigger")
        if self.active_until <= self.active_from:
            raise ValueError("active_until must be after active_from")
        per_day, overall = self.max_per_day, self.max_overall
        if per_day is not None and overall is not None and per_day > overall:
            raise ValueError("max_per_day must not exceed max_overall")
        return self


class DropRule(DropRuleDraft):
    id: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


def matches(rule: DropRule, trigger: Trigger, page: str | None, now: datetime) -> bool:
    """Whether a check (trigger, page) at `now` is one this rule draws for."""
    if not rule.enabled or rule.trigger != trigger:
        return False
    if rule.page is not None and rule.page != page:
        return False
    return rule.active_from <= now < rule.active_until


def audience_fits(rule: DropRule, paid_orders: int) -> bool:
    if rule.audience == DropAudience.NEW_CUSTOMERS:
        return paid_orders == 0
    if rule.audience == DropAudience.RETURNING_CUSTOMERS:
        return paid_orders > 0
    return True


def needs_order_history(rules: list[DropRule]) -> bool:
    return any(r.audience != DropAudience.ANYONE for r in rules)


def next_ordinal(
    rule: DropRule, dropped_at: list[datetime], now: datetime, zone: tzinfo
) -> int | None:
    """The ordinal of the customer's next drop of this rule, or None when a cap is reached."""
    if rule.max_overall is not None and len(dropped_at) >= rule.max_overall:
        return None
    if rule.max_per_day is not None:
        today = local_day(now, zone)
        if sum(1 for at in dropped_at if local_day(at, zone) == today) >= rule.max_per_day:
            return None
    return len(dropped_at) + 1


def draws(rule: DropRule, rng: random.Random) -> bool:
    """One draw with the rule's probability (random() < 1, so 100 % always drops)."""
    return rng.random() * 100 < rule.probability_percent


def reference(rule_id: str, customer_id: str, ordinal: int) -> str:
    """The grant reference of a customer's `ordinal`-th drop of a rule."""
    return f"drop:{rule_id}:{customer_id}:{ordinal}"


def rule_of(reference: str) -> str | None:
    """The rule a drop's reference names (None for another channel's reference)."""
    if not reference.startswith("drop:"):
        return None
    return reference.split(":", 2)[1]  # rule ids hold no colon; customer ids may
