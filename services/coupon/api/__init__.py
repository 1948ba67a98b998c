"""Coupon HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

from servicekit.jobs import jobs_router  # channels part (issue 7)
from services.coupon.api import (
    alerts,  # monitoring-and-alerts part (issue 7)
    budgets,
    campaigns,
    claim_centre,  # channels part (issue 7)
    claims,
    codes,  # codes-and-partners part
    compensation,  # compensation-and-subsidy part
    drops,  # channels part (issue 7)
    partner,  # codes-and-partners part
    policy,  # core part (issue 6)
    stats,  # monitoring-and-alerts part (issue 7)
    subsidies,  # compensation-and-subsidy part
    targeted,  # channels part (issue 7)
    wallet,
)

router = APIRouter()
for part in (budgets, campaigns, claims, wallet):
    router.include_router(part.router)
router.include_router(compensation.router)  # compensation-and-subsidy part
router.include_router(subsidies.router)  # compensation-and-subsidy part

router.include_router(codes.router)  # codes-and-partners part
router.include_router(partner.router)  # codes-and-partners part

router.include_router(policy.router)  # core part (issue 6)

for channel in (claim_centre, drops, targeted):  # channels part (issue 7)
    router.include_router(channel.router)
router.include_router(jobs_router())  # channels part (issue 7): targeted issues are jobs

for monitoring in (stats, alerts):  # monitoring-and-alerts part (issue 7)
    router.include_router(monitoring.router)

__all__ = ["router"]
