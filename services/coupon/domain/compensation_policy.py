"""The compensation policy (赔付策略): which batches compensate and the range of their
values, and the per-customer limits per day, week or month. Pure: no I/O.

The range is a set of compensation batches. A compensation coupon is real money, so it
comes from a batch whose campaign's approval reserved its value from a budget, like every
other coupon; the policy lists which batches may be used and bounds their face values to
[min_value, max_value] (a random batch's whole draw range must lie inside). A value free
per request would bypass that reservation. Customers must not claim compensation coupons
themselves, so a compensation batch's claim window is over (grants, compensation's
included, ignore the claim window; claims are refused with claim_closed).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from servicekit.errors import InvalidInput
from services.coupon.domain.batches import ID_PATTERN, BatchSpec, Discount, DiscountKind

MAX_VALUE = 10_000_000


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_key(period: Period, at: datetime, zone: tzinfo) -> str:
    """The period `at` falls in, in the tenant's time zone: 2026-11-24, 2026-W48, 2026-11."""
    local = at.astimezone(zone).date()
    if period == Period.DAY:
        return local.isoformat()
    if period == Period.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


class PeriodLimit(BaseModel):
    """Most compensations (count) and most value (minor units) per customer in a period."""

    model_config = ConfigDict(extra="forbid")

    period: Period
    max_count: int | None = Field(None, ge=1, le=1_000)
    max_amount: int | None = Field(None, ge=1, le=10**10)

    @model_validator(mode="after")
    def _something(self) -> PeriodLimit:
        if self.max_count is None and self.max_amount is None:
            raise ValueError("a period limit gives max_count, max_amount or both")
        return self


class CompensationPolicy(BaseModel):
    """A tenant's compensation rules (PUT as a whole)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt threshold must not pass unseen

    batch_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(min_length=1, max_length=20)
    #: The range every compensation coupon's face value lies in (minor units).
    min_value: int = Field(ge=1, le=MAX_VALUE)
    max_value: int = Field(ge=1, le=MAX_VALUE)
    #: A coupon worth more than this waits for review (None: no such threshold).
    review_above: int | None = Field(None, ge=1, le=MAX_VALUE)
    period_limits: list[PeriodLimit] = Field(default_factory=list, max_length=3)

    @field_validator("max_value")
    @classmethod
    def _range(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("min_value", 0):
            raise ValueError("max_value is below min_value")
        return value

    @field_validator("batch_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a batch is listed twice")
        return value

    @field_validator("period_limits")
    @classmethod
    def _one_per_period(cls, value: list[PeriodLimit]) -> list[PeriodLimit]:
        periods = [limit.period for limit in value]
        if len(set(periods)) != len(periods):
            raise ValueError("one limit per period")
        return value


class StoredPolicy(CompensationPolicy):
    updated_by: str
    updated_at: datetime


def value_range(discount: Discount) -> tuple[int, int] | None:
    """The least and most a coupon of the discount is worth; None for a return discount
    (its worth is a follow-up coupon, not a value)."""
    if discount.kind == DiscountKind.RETURN:
        return None
    if discount.kind == DiscountKind.RANDOM:
        assert discount.min_amount is not None and discount.max_amount is not None
        return discount.min_amount, discount.max_amount
    value = discount.max_value()
    return value, value


def check_policy_batches(
    policy: CompensationPolicy, specs: dict[str, BatchSpec], now: datetime
) -> None:
    """Every listed batch exists, is one customers cannot claim themselves (its claim
    window is over: grants ignore the window, claims do not), and its values lie in the
    policy's range."""
    for i, batch_id in enumerate(policy.batch_ids):
        field = f"batch_ids.{i}"
        spec = specs.get(batch_id)
        if spec is None:
            raise InvalidInput(f"no batch {batch_id}", field=field, code="batch_not_found")
        values = value_range(spec.discount)
        if values is None:
            raise InvalidInput(
                "a return batch cannot compensate", field=field, code="batch_not_compensable"
            )
        if spec.claim_until > now:
            raise InvalidInput(
                f"customers can still claim batch {batch_id} themselves until "
                f"{spec.claim_until.isoformat()}; a compensation batch's claim window is over",
                field=field,
                code="batch_self_claimable",
            )
        if values[0] < policy.min_value or values[1] > policy.max_value:
            raise InvalidInput(
                f"batch {batch_id} is worth {values[0]}-{values[1]}, outside the range "
                f"{policy.min_value}-{policy.max_value}",
                field=field,
                code="value_out_of_range",
            )
