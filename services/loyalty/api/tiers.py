"""Tier routes: the tenant's tier scheme, a member's tier with growth value, and the
record of every tier change."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from servicekit.clock import utcnow
from servicekit.context import TenantDep
from servicekit.errors import NotFound
from services.loyalty.api.deps import CustomerId, OperatorDep, TiersDep
from services.loyalty.domain.tiers import TierChange, TierScheme

router = APIRouter(tags=["tiers"])


class TierView(BaseModel):
    customer_id: str
    tier_id: str | None
    tier_name: str | None
    #: Growth value inside the scheme's window, as of now.
    growth: int
    lifetime_growth: int
    tier_since: datetime | None
    #: End of the protection period: the next evaluation.
    evaluate_at: datetime | None
    #: The next tier and the growth still needed to reach it.
    next_tier_id: str | None
    growth_to_next: int | None
    benefits: list[str]


@router.put("/tier-scheme")
async def set_tier_scheme(
    body: TierScheme, tenant: TenantDep, actor: OperatorDep, tiers: TiersDep
) -> TierScheme:
    """Tiers lowest first by growth threshold, each with a points multiplier and benefits;
    growth from spend or points, over a window; protection and warning periods."""
    await tiers.set_scheme(tenant, body, changed_by=actor.id)
    return body


@router.get("/tier-scheme")
async def get_tier_scheme(tenant: TenantDep, tiers: TiersDep) -> TierScheme:
    scheme = await tiers.scheme(tenant)
    if scheme is None:
        raise NotFound("no tier scheme is set", code="tier_scheme_not_found")
    return scheme


@router.get("/customers/{customer_id}/tier")
async def get_member_tier(customer_id: CustomerId, tenant: TenantDep, tiers: TiersDep) -> TierView:
    member, scheme = await tiers.member(tenant, customer_id)
    growth = member.window_growth(scheme, utcnow()) if scheme else member.lifetime_growth
    tier = scheme.tier(member.tier_id) if scheme else None
    above = [t for t in scheme.tiers if t.threshold > growth] if scheme else []
    return TierView(
        customer_id=customer_id,
        tier_id=member.tier_id,
        tier_name=tier.name if tier else None,
        growth=growth,
        lifetime_growth=member.lifetime_growth,
        tier_since=member.tier_since,
        evaluate_at=member.evaluate_at,
        next_tier_id=above[0].tier_id if above else None,
        growth_to_next=above[0].threshold - growth if above else None,
        benefits=tier.benefits if tier else [],
    )


@router.get("/customers/{customer_id}/tier/changes")
async def list_tier_changes(
    customer_id: CustomerId, tenant: TenantDep, tiers: TiersDep
) -> list[TierChange]:
    """Every tier change of the member, newest first (the last 100)."""
    return await tiers.changes(tenant, customer_id)
