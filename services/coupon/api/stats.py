"""Monitoring routes (效果监控): per budget, campaign and batch, what was issued, used and
spent, and the GMV of the orders that used the coupons."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from servicekit.context import TenantDep
from servicekit.runtime import RuntimeDep
from services.coupon.api.deps import Id
from services.coupon.service.stats import BatchStats, BudgetStats, CampaignStats, StatsService

router = APIRouter(tags=["monitoring"])


async def _stats(runtime: RuntimeDep) -> StatsService:
    return StatsService(runtime.db)


StatsDep = Annotated[StatsService, Depends(_stats)]


@router.get("/stats/budgets/{budget_id}")
async def budget_stats(budget_id: Id, tenant: TenantDep, stats: StatsDep) -> BudgetStats:
    """Total, allocated, reserved, consumed and remaining; target GMV, the GMV achieved by
    paid orders that used the budget's coupons (net of refunds), and what remains to reach
    it; per campaign, its reservation, consumption and GMV."""
    return await stats.budget(tenant, budget_id)


@router.get("/stats/campaigns/{campaign_id}")
async def campaign_stats(campaign_id: Id, tenant: TenantDep, stats: StatsDep) -> CampaignStats:
    """Coupons issued and used, subsidy spent, and GMV of the orders using them, in total
    and per batch."""
    return await stats.campaign(tenant, campaign_id)


@router.get("/stats/batches/{batch_id}")
async def batch_stats(batch_id: Id, tenant: TenantDep, stats: StatsDep) -> BatchStats:
    return await stats.batch(tenant, batch_id)
