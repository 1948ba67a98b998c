"""Claiming (领取) and granting: the flash-sale hot path, and the grants other services
(loyalty's points exchange, partners) make straight into a customer's wallet."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from servicekit.context import Actor, ActorDep, TenantDep
from services.coupon.api.deps import DeskDep, Id, LimiterDep
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.coupons import Coupon, Refusal, effective_state
from services.coupon.domain.rate_limits import Limit
from services.coupon.service.claims import ClaimRefused, ClaimRequest
from services.coupon.settings import CouponSettings
from services.coupon.store.batches import Batch

router = APIRouter(tags=["claims"])
CHANNEL_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class ClaimBody(BaseModel):
    customer_id: str = Field(pattern=ID_PATTERN)
    channel: str = Field("self_claim", pattern=CHANNEL_PATTERN)


class GrantBody(BaseModel):
    customer_id: str = Field(pattern=ID_PATTERN)
    channel: str = Field(pattern=CHANNEL_PATTERN)
    #: The caller's own id for this grant (an exchange id): the same one, the same coupon.
    reference: str = Field(pattern=ID_PATTERN)


class CouponView(Coupon):
    """A coupon as it stands now (an expired validity or lapsed lock already applied).
    `coupon_id` repeats `id` for callers of the grants contract, which names it so."""

    coupon_id: str

    @classmethod
    def of(cls, coupon: Coupon, now: datetime) -> CouponView:
        state = effective_state(coupon, now)
        return cls.model_validate({**coupon.model_dump(), "state": state, "coupon_id": coupon.id})


class BatchView(BaseModel):
    batch: Batch
    #: Coupons of the batch by state, and stock not yet leased to any replica.
    coupons: dict[str, int]


@router.get("/batches/{batch_id}")
async def get_batch(batch_id: Id, tenant: TenantDep, desk: DeskDep) -> BatchView:
    batch = await desk.batches.get(tenant, batch_id)
    if batch is None:
        await desk.batch(tenant, batch_id)  # raises the 404
    assert batch is not None
    return BatchView(batch=batch, coupons=await desk.coupons.count_by_state(tenant, batch_id))


@router.post("/batches/{batch_id}/claims", status_code=status.HTTP_201_CREATED)
async def claim(
    batch_id: Id,
    body: ClaimBody,
    tenant: TenantDep,
    actor: ActorDep,
    desk: DeskDep,
    limiter: LimiterDep,
) -> CouponView:
    """A customer claims a coupon of the batch. Refusals are 409 with a `code`: sold_out,
    limit_reached, daily_limit_reached, batch_not_active, claim_not_open, claim_closed,
    not_new_customer. Too many requests (per customer, channel, partner client or the
    batch's issuing rate, over all replicas) get 429 with Retry-After.

    Once the batch is sold out, refusals are answered from memory without the store."""
    if desk.sold_out(tenant, batch_id):
        raise ClaimRefused(Refusal.SOLD_OUT)
    batch = await desk.batch(tenant, batch_id)
    limits = claim_limits(desk.settings, batch, body.customer_id, body.channel, actor)
    await limiter.check(tenant, limits)
    claimed = await desk.issue(
        tenant, batch, ClaimRequest(body.customer_id, body.channel), check_window=True
    )
    return CouponView.of(claimed.coupon, claimed.coupon.claimed_at)


@router.post("/batches/{batch_id}/grants", status_code=status.HTTP_201_CREATED)
async def grant(
    batch_id: Id,
    body: GrantBody,
    tenant: TenantDep,
    actor: ActorDep,
    desk: DeskDep,
    limiter: LimiterDep,
) -> CouponView:
    """Issue a coupon of the batch straight to the wallet (points exchange, partner
    exchange, compensation): no claim window, but stock and per-customer limits apply.
    Idempotent by (batch, `reference`): the same reference answers the same coupon (201).
    Refusals as for claims (409 with `code`)."""
    batch = await desk.batch(tenant, batch_id)
    limits = claim_limits(desk.settings, batch, None, body.channel, actor)
    await limiter.check(tenant, limits)
    request = ClaimRequest(body.customer_id, body.channel, body.reference)
    claimed = await desk.issue(tenant, batch, request, check_window=False)
    return CouponView.of(claimed.coupon, claimed.coupon.claimed_at)


def claim_limits(
    settings: CouponSettings, batch: Batch, customer_id: str | None, channel: str, actor: Actor
) -> list[Limit]:
    """The windows a request counts in; a grant (no customer rate) is a service's call."""
    limits = [Limit("channel", channel, settings.channel_claims_per_second, 1)]
    if customer_id is not None:
        limits.append(Limit("customer", customer_id, settings.customer_claims_per_minute, 60))
    if actor.kind == "partner":
        limits.append(Limit("partner", actor.id, settings.partner_requests_per_second, 1))
    if batch.spec.issue_rate_per_second:
        limits.append(Limit("batch", batch.id, batch.spec.issue_rate_per_second, 1))
    return limits
