"""Triggered rules (场景营销, on events): when an event of a kind arrives and its conditions
hold, a message goes out after an optional delay. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from services.reach.domain.channels import Channel, Purpose, Recipient

Fact = str | int | float | bool | None


class Trigger(StrEnum):
    COUPON_CLAIMED = "coupon_claimed"
    #: The coupon service announced a coupon about to expire (`coupon.expiry_noticed.v1`,
    #: once per coupon, within its notice window of the end): send then, after
    #: `delay_seconds`, or `before_expiry_seconds` ahead of the end (at once when that is
    #: already past); cancelled when the coupon is redeemed first, dropped when it would
    #: arrive after the coupon ended.
    COUPON_EXPIRING = "coupon_expiring"
    TIER_UPGRADED = "tier_upgraded"
    SEGMENT_JOINED = "segment_joined"
    SEGMENT_LEFT = "segment_left"
    FOLLOW_UP_REMINDER_DUE = "follow_up_reminder_due"
    ORDER_PAID = "order_paid"
    CUSTOMER_REGISTERED = "customer_registered"
    #: Once a year in the customer's birthday month (the customer service publishes the
    #: month, not the day), found by a sweep rather than an event.
    BIRTHDAY = "birthday"


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"


class Condition(BaseModel):
    field: str = Field(pattern=r"^[a-z_]{1,40}$")
    op: Op
    value: str | int | float | bool | list[str | int | float] | None


class Rule(BaseModel):
    tenant: str
    rule_id: str
    name: str
    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list, max_length=10)
    delay_seconds: int = Field(0, ge=0, le=90 * 86_400)
    before_expiry_seconds: int | None = Field(None, ge=0, le=90 * 86_400)
    channel: Channel
    purpose: Purpose = Purpose.MARKETING
    template_id: str
    template_version: int | None = Field(None, ge=1)
    active: bool = True
    created_by: str
    created_at: datetime

    @model_validator(mode="after")
    def _expiry_only_for_expiring(self) -> Rule:
        expiring = self.trigger is Trigger.COUPON_EXPIRING
        if self.before_expiry_seconds is not None and not expiring:
            raise ValueError("before_expiry_seconds is for coupon_expiring rules only")
        if self.before_expiry_seconds is not None and self.delay_seconds:
            raise ValueError("give delay_seconds or before_expiry_seconds, not both")
        return self

    @property
    def recipient(self) -> Recipient:
        if self.trigger is Trigger.FOLLOW_UP_REMINDER_DUE:
            return Recipient.ADVISOR
        return Recipient.CUSTOMER


def holds(rule: Rule, facts: dict[str, Any]) -> bool:
    """Every condition holds of the event's facts (a missing fact fails its condition)."""
    return all(_holds(c, facts.get(c.field)) for c in rule.conditions)


def _holds(condition: Condition, fact: Any) -> bool:
    want = condition.value
    if condition.op is Op.IN:
        return isinstance(want, list) and fact in want
    if condition.op is Op.EQ:
        return fact == want
    if condition.op is Op.NE:
        return fact != want
    if fact is None or want is None or isinstance(want, list):
        return False
    try:
        return {
            Op.GT: fact > want,
            Op.GTE: fact >= want,
            Op.LT: fact < want,
            Op.LTE: fact <= want,
        }[condition.op]
    except TypeError:
        return False


def send_time(rule: Rule, occurred_at: datetime, expires_at: datetime | None = None) -> datetime:
    """When the rule's message is due: after the delay, or ahead of the coupon's expiry
    (never before the event itself)."""
    if rule.before_expiry_seconds is not None and expires_at is not None:
        return max(occurred_at, expires_at - timedelta(seconds=rule.before_expiry_seconds))
    return occurred_at + timedelta(seconds=rule.delay_seconds)


def too_late(at: datetime, expires_at: datetime | None) -> bool:
    """A reminder due when (or after) its coupon ends is pointless: it is not sent."""
    return expires_at is not None and at >= expires_at
