"""Compensation (赔付): goodwill coupons put straight into a customer's wallet, within the
policy's range (see compensation_policy); requests over a review threshold wait for a
reviewer, who approves or rejects with a reason. Pure: no I/O.

The agent asks for a value (the policy's batch of that fixed value) or a batch. Review
thresholds (any one sends the request to review):
- period_count / period_amount: what the customer was given in the day, week or month
  (tenant's time zone) plus this request would go above the period's limit;
- single_value: the coupon is worth more than `review_above`;
- same_order: the order already has a compensation (issued or waiting for review).
A random batch's value counts as the most it can draw until the coupon is issued.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from servicekit.errors import Conflict, Forbidden, InvalidInput
from services.coupon.domain.batches import ID_PATTERN, Discount
from services.coupon.domain.compensation_policy import (
    MAX_VALUE,
    CompensationPolicy,
    Period,
    PeriodLimit,
    value_range,
)

CHANNEL = "compensation"


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
