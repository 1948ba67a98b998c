"""Coupon HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

from services.coupon.api import (
    budgets,
    campaigns,
    claims,
    codes,
    compensation,  # compensation-and-subsidy part
    partner,  # codes-and-partners part
    policy,  # core part (issue 6)
    wallet,
)

router = APIRouter()
for part in (budgets, campaigns, claims, wallet):
    router.include_router(part.router)
router.include_router(compensation.router)  # compensation-and-subsidy part
router.include_router(codes.router)  # codes-and-partners part
router.include_router(partner.router)  # codes-and-partners part

router.include_router(policy.router)  # core part (issue 6)

__all__ = ["router"]
