"""The claim centre (领券中心): which open batches a customer sees, and whether each can be
claimed now or why not. Pure: no I/O.

Shown: batches of running campaigns inside their claim window that the customer's audience
fits and that ops left in the claim centre. Of those, a batch the customer cannot claim now
is still listed with its reason, because the page shows it greyed out with a badge
(已领取 limit_reached, 今日已领 daily_limit_reached, 已抢光 sold_out), as shop apps do.
A batch the customer will never be able to claim (new customers only, for a returning
customer) is not shown at all: it would only tease."""

from __future__ import annotations

from datetime import datetime, tzinfo

from pydantic import BaseModel

from services.coupon.domain.batches import (
    Audience,
    BatchSpec,
    Discount,
    Platform,
    Scope,
    UsableHours,
    Validity,
)
from services.coupon.domain.coupons import (
    REFUSAL_DETAIL,
    Refusal,
    audience_refusal,
    claim_window_refusal,
    local_day,
)

#: Return coupons (满返) are issued for an order, not claimed: they take no claim slot.
RETURN_CHANNEL = "order_return"


class Listing(BaseModel):
    """One batch as the claim centre shows it to one customer."""

    batch_id: str
    campaign_id: str
    name: str
    discount: Discount
    scope: Scope
    platform: Platform
    audience: Audience
    claim_until: datetime
    validity: Validity
    usable_weekdays: list[int]
    usable_hours: UsableHours | None
    per_customer_limit: int
    per_customer_daily_limit: int | None
    #: Coupons of the batch the customer holds (any state), and of those claimed today.
    held: int
    held_today: int
    claimable: bool
    #: Why not, when not claimable (the code a claim would be refused with).
    reason: Refusal | None = None
    detail: str | None = None


def shown(spec: BatchSpec, paid_orders: int, now: datetime) -> bool:
    """Whether the batch belongs on this customer's claim centre at all."""
    return (
        spec.in_claim_centre
        and claim_window_refusal(spec, now) is None
        and audience_refusal(spec, paid_orders) is None
    )


def why_not(spec: BatchSpec, held: int, held_today: int, sold_out: bool) -> Refusal | None:
    """What a claim now would be refused with; what the customer did comes first (已领取
    reads better than 已抢光 to someone who has the coupon)."""
    if held >= spec.per_customer_limit:
        return Refusal.LIMIT_REACHED
    daily = spec.per_customer_daily_limit
    if daily is not None and held_today >= daily:
        return Refusal.DAILY_LIMIT_REACHED
    return Refusal.SOLD_OUT if sold_out else None


def listing(
    batch_id: str,
    campaign_id: str,
    spec: BatchSpec,
    claimed_at: list[datetime],
    *,
    sold_out: bool,
    now: datetime,
    zone: tzinfo,
) -> Listing:
    """The batch for a customer holding coupons of it claimed at `claimed_at`."""
    today = local_day(now, zone)
    held_today = sum(1 for at in claimed_at if local_day(at, zone) == today)
    reason = why_not(spec, len(claimed_at), held_today, sold_out)
    return Listing(
        batch_id=batch_id,
        campaign_id=campaign_id,
        name=spec.name,
        discount=spec.discount,
        scope=spec.scope,
        platform=spec.platform,
        audience=spec.audience,
        claim_until=spec.claim_until,
        validity=spec.validity,
        usable_weekdays=spec.usable_weekdays,
        usable_hours=spec.usable_hours,
        per_customer_limit=spec.per_customer_limit,
        per_customer_daily_limit=spec.per_customer_daily_limit,
        held=len(claimed_at),
        held_today=held_today,
        claimable=reason is None,
        reason=reason,
        detail=REFUSAL_DETAIL[reason] if reason else None,
    )


def ordered(listings: list[Listing]) -> list[Listing]:
    """Claimable first, then by the claim window's end (ending soonest first), then name."""
    return sorted(listings, key=lambda x: (not x.claimable, x.claim_until, x.name, x.batch_id))
