"""Compensation (赔付): goodwill coupons put straight into a customer's wallet, within a
configured range; requests over a review threshold wait for a reviewer. Pure: no I/O.

The range is a set of compensation batches. A compensation coupon is real money, so it
comes from a batch whose campaign's approval reserved its value from a budget, like every
other coupon; the policy lists which batches may be used and bounds their face values to
[min_value, max_value] (a random batch's whole draw range must lie inside). The agent picks
a value (the listed batch of that fixed value) or a batch. A value free per request would
bypass that reservation.

Review thresholds (any one sends the request to review):
- period_count / period_amount: what the customer was given in the day, week or month
  (tenant's time zone) plus this request would go above the period's limit;
- single_value: the coupon is worth more than `review_above`;
- same_order: the order already has a compensation (issued or waiting for review).
A random batch's value counts as the most it can draw until the coupon is issued.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from servicekit.errors import Conflict, Forbidden, InvalidInput
from services.coupon.domain.batches import ID_PATTERN, Discount, DiscountKind

MAX_VALUE = 10_000_000
CHANNEL = "compensation"


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


def check_policy_batches(policy: CompensationPolicy, discounts: dict[str, Discount]) -> None:
    """Every listed batch exists and its values lie in the policy's range."""
    for i, batch_id in enumerate(policy.batch_ids):
        field = f"batch_ids.{i}"
        discount = discounts.get(batch_id)
        if discount is None:
            raise InvalidInput(f"no batch {batch_id}", field=field, code="batch_not_found")
        values = value_range(discount)
        if values is None:
            raise InvalidInput(
                "a return batch cannot compensate", field=field, code="batch_not_compensable"
            )
        if values[0] < policy.min_value or values[1] > policy.max_value:
            raise InvalidInput(
                f"batch {batch_id} is worth {values[0]}-{values[1]}, outside the range "
                f"{policy.min_value}-{policy.max_value}",
                field=field,
                code="value_out_of_range",
            )


class CompensationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(pattern=ID_PATTERN)
    order_id: str | None = Field(None, pattern=ID_PATTERN)
    reason: str = Field(min_length=1, max_length=500)
    #: The value wanted (the policy's batch of that fixed value), or the batch itself.
    value: int | None = Field(None, ge=1, le=MAX_VALUE)
    batch_id: str | None = Field(None, pattern=ID_PATTERN, validate_default=True)
    #: The caller's id for this request (a ticket id): the same one, the same compensation.
    reference: str = Field(pattern=ID_PATTERN)

    @field_validator("batch_id")
    @classmethod
    def _one(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "value" in info.data and (info.data["value"] is None) == (value is None):
            raise ValueError("give value or batch_id (exactly one)")
        return value


def choose_batch(
    policy: CompensationPolicy, request: CompensationRequest, discounts: dict[str, Discount]
) -> tuple[str, int]:
    """The batch the request is paid from, and the value it counts as."""
    if request.batch_id is not None:
        discount = discounts.get(request.batch_id)
        if request.batch_id not in policy.batch_ids or discount is None:
            raise InvalidInput(
                "the batch is not one the compensation policy lists",
                field="batch_id",
                code="batch_not_allowed",
            )
        values = value_range(discount)
        assert values is not None
        return request.batch_id, values[1]
    value = request.value
    assert value is not None
    if not policy.min_value <= value <= policy.max_value:
        raise InvalidInput(
            f"compensation values lie in {policy.min_value}-{policy.max_value}",
            field="value",
            code="value_out_of_range",
        )
    for batch_id in policy.batch_ids:
        discount = discounts.get(batch_id)
        if discount is not None and value_range(discount) == (value, value):
            return batch_id, value
    listed = [discounts[b] for b in policy.batch_ids if b in discounts]
    offered = sorted({r[0] for d in listed if (r := value_range(d)) and r[0] == r[1]})
    raise InvalidInput(
        f"no compensation batch is worth {value}; the fixed values offered are {offered}",
        field="value",
        code="value_not_offered",
    )


class Tally(BaseModel):
    """What a customer was given in one period."""

    count: int = 0
    amount: int = 0


Threshold = Literal["period_count", "period_amount", "single_value", "same_order"]


class Exceeded(BaseModel):
    threshold: Threshold
    period: Period | None = None
    limit: int | None = None
    #: Given so far in the period (count or amount), before this request.
    current: int | None = None


def assess(
    policy: CompensationPolicy, value: int, tallies: dict[Period, Tally], order_seen: bool
) -> list[Exceeded]:
    """The review thresholds the request goes over; empty: it is issued at once."""
    over: list[Exceeded] = []
    for limit in policy.period_limits:
        tally = tallies.get(limit.period, Tally())
        if limit.max_count is not None and tally.count + 1 > limit.max_count:
            over.append(
                Exceeded(
                    threshold="period_count",
                    period=limit.period,
                    limit=limit.max_count,
                    current=tally.count,
                )
            )
        if limit.max_amount is not None and tally.amount + value > limit.max_amount:
            over.append(
                Exceeded(
                    threshold="period_amount",
                    period=limit.period,
                    limit=limit.max_amount,
                    current=tally.amount,
                )
            )
    if policy.review_above is not None and value > policy.review_above:
        over.append(Exceeded(threshold="single_value", limit=policy.review_above))
    if order_seen:
        over.append(Exceeded(threshold="same_order"))
    return over


def room(limit: PeriodLimit, value: int) -> tuple[int | None, int | None]:
    """The most count and amount a period may already hold for `value` to fit: the guard
    of the conditional update that counts an issued compensation."""
    count = None if limit.max_count is None else limit.max_count - 1
    amount = None if limit.max_amount is None else limit.max_amount - value
    return count, amount


class CompensationState(StrEnum):
    PENDING_REVIEW = "pending_review"
    #: Counted and approved (at once or by a reviewer); the coupon is being issued.
    ISSUING = "issuing"
    ISSUED = "issued"
    REJECTED = "rejected"


class Compensation(BaseModel):
    id: str
    customer_id: str
    order_id: str | None
    reason: str
    reference: str
    batch_id: str
    #: The value counted against the thresholds (the coupon's face value once issued).
    value: int
    state: CompensationState
    exceeded: list[Exceeded] = Field(default_factory=list)
    #: The period keys it was counted in while issuing or issued (so a refusal undoes the
    #: right tallies even after midnight).
    counted_in: dict[Period, str] = Field(default_factory=dict)
    requested_by: str
    requested_at: datetime
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_note: str | None = None
    #: When it became `issuing`: one stalled there (a crash between counting and issuing)
    #: is finished by the resume worker.
    issuing_since: datetime | None = None
    #: Why issuing the approved coupon was refused last (sold_out, ...), if it was.
    issue_refusal: str | None = None
    coupon_id: str | None = None
    issued_at: datetime | None = None


def requested(
    compensation_id: str,
    request: CompensationRequest,
    batch_id: str,
    value: int,
    exceeded: list[Exceeded],
    *,
    by: str,
    now: datetime,
) -> Compensation:
    return Compensation(
        id=compensation_id,
        customer_id=request.customer_id,
        order_id=request.order_id,
        reason=request.reason,
        reference=request.reference,
        batch_id=batch_id,
        value=value,
        state=CompensationState.PENDING_REVIEW if exceeded else CompensationState.ISSUING,
        issuing_since=None if exceeded else now,
        exceeded=exceeded,
        requested_by=by,
        requested_at=now,
    )


def same_request(c: Compensation, request: CompensationRequest) -> bool:
    """A repeated reference asks for what the first request asked."""
    return (c.customer_id, c.order_id, c.reason) == (
        request.customer_id,
        request.order_id,
        request.reason,
    ) and (request.batch_id in (None, c.batch_id) and request.value in (None, c.value))


def _reviewable(c: Compensation, reviewer: str, step: str) -> None:
    if c.state != CompensationState.PENDING_REVIEW:
        raise Conflict(
            f"a compensation that is {c.state} cannot be {step}",
            code="compensation_state",
            state=str(c.state),
        )
    if reviewer == c.requested_by:
        raise Forbidden("a reviewer cannot review their own request", code="own_request")


def approved(c: Compensation, *, by: str, now: datetime, note: str | None) -> Compensation:
    _reviewable(c, by, "approved")
    return c.model_copy(
        update={
            "state": CompensationState.ISSUING,
            "issuing_since": now,
            "reviewed_by": by,
            "reviewed_at": now,
            "review_note": note,
        }
    )


def rejected(c: Compensation, *, by: str, now: datetime, reason: str) -> Compensation:
    _reviewable(c, by, "rejected")
    return c.model_copy(
        update={
            "state": CompensationState.REJECTED,
            "reviewed_by": by,
            "reviewed_at": now,
            "review_note": reason,
        }
    )
