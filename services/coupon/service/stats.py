"""Monitoring (效果监控): per budget, campaign and batch, what was spent and what it brought.

Money counters come from the budget and campaign documents (kept by the ledger's moves);
coupon counts from the coupons; GMV from the paid orders that used the coupons (net of
refunds), recorded by the order consumer. Read on demand, for the ops console."""

from __future__ import annotations

from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.errors import NotFound
from servicekit.mongo import Document
from services.coupon.store.alerts import held_unissued
from services.coupon.store.batches import Batch, BatchStore
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.stats import (
    CouponCounts,
    StatsStore,
    Totals,
    campaigns_of_budget,
    counts_of,
    totals_of,
)


class Usage(BaseModel):
    issued: int
    used: int
    #: Discounts of the used coupons (minor units).
    subsidy_spent: int
    #: GMV of the paid orders that used them, net of refunds, and how many orders.
    gmv: int
    orders: int


def _usage(counts: CouponCounts, totals: Totals) -> Usage:
    return Usage(
        issued=counts.issued,
        used=counts.used,
        subsidy_spent=counts.subsidy,
        gmv=totals.gmv,
        orders=totals.orders,
    )


class BatchStats(Usage):
    batch_id: str
    campaign_id: str
    name: str
    state: str
    stock: int
    #: Stock no replica has leased yet, and stock not issued yet (leased or not).
    unleased: int
    left: int
    issuing_blocked: bool


class CampaignStats(Usage):
    campaign_id: str
    name: str
    state: str
    budget_id: str
    max_subsidy: int
    #: Held from the budget now, and charged to it for used coupons (the ledger's view).
    reserved: int
    consumed: int
    batches: list[BatchStats]


class CampaignLine(BaseModel):
    campaign_id: str
    name: str
    state: str
    reserved: int
    consumed: int
    gmv: int
    orders: int


class BudgetStats(BaseModel):
    budget_id: str
    name: str
    owner_kind: str
    owner: str
    total: int
    allocated: int
    reserved: int
    consumed: int
    remaining: int
    target_gmv: int | None
    achieved_gmv: int
    #: What is left to reach the target (0 once reached; None without a target).
    remaining_gmv: int | None
    orders: int
    issuing_blocked: bool
    campaigns: list[CampaignLine]


class StatsService:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.stats = StatsStore(db)
        self.budgets = BudgetStore(db)
        self.campaigns = CampaignStore(db)
        self.batches = BatchStore(db)

    async def budget(self, tenant: str, budget_id: str) -> BudgetStats:
        budget = await self.budgets.get(tenant, budget_id)
        if budget is None:
            raise NotFound(f"no budget {budget_id}", code="budget_not_found")
        campaigns = await campaigns_of_budget(self.db, tenant, budget_id)
        by_campaign = {c["_id"]: await self._campaign_totals(tenant, c["_id"]) for c in campaigns}
        achieved = totals_of(await self.stats.order_totals(tenant, "budget_id", budget_id))
        target = budget.target_gmv
        return BudgetStats(
            budget_id=budget.id,
            name=budget.name,
            owner_kind=str(budget.owner_kind),
            owner=budget.owner,
            total=budget.amount,
            allocated=budget.allocated,
            reserved=budget.reserved,
            consumed=budget.consumed,
            remaining=budget.remaining,
            target_gmv=target,
            achieved_gmv=achieved.gmv,
            remaining_gmv=None if target is None else max(0, target - achieved.gmv),
            orders=achieved.orders,
            issuing_blocked=budget.issuing_blocked,
            campaigns=[
                CampaignLine(
                    campaign_id=c["_id"],
                    name=c["name"],
                    state=c["state"],
                    reserved=int(c.get("reserved", 0)),
                    consumed=int(c.get("consumed", 0)),
                    gmv=by_campaign[c["_id"]].gmv,
                    orders=by_campaign[c["_id"]].orders,
                )
                for c in campaigns
            ],
        )

    async def _campaign_totals(self, tenant: str, campaign_id: str) -> Totals:
        return totals_of(await self.stats.order_totals(tenant, "campaign_id", campaign_id))

    async def campaign(self, tenant: str, campaign_id: str) -> CampaignStats:
        campaign = await self.campaigns.get(tenant, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
        counts = await self.stats.coupon_counts(tenant, "campaign_id", campaign_id)
        totals = await self.stats.order_totals(tenant, "campaign_id", campaign_id)
        batches = await self.batches.of_campaign(tenant, campaign_id)
        return CampaignStats(
            campaign_id=campaign.id,
            name=campaign.name,
            state=str(campaign.state),
            budget_id=campaign.budget_id,
            max_subsidy=campaign.max_subsidy,
            reserved=campaign.reserved,
            consumed=campaign.consumed,
            batches=[await self._batch_stats(b, counts, totals) for b in batches],
            **_usage(counts_of(counts), totals_of(totals)).model_dump(),
        )

    async def batch(self, tenant: str, batch_id: str) -> BatchStats:
        batch = await self.batches.get(tenant, batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id}", code="batch_not_found")
        counts = await self.stats.coupon_counts(tenant, "batch_id", batch_id)
        totals = await self.stats.order_totals(tenant, "batch_id", batch_id)
        return await self._batch_stats(batch, counts, totals)

    async def _batch_stats(
        self, batch: Batch, counts: dict[str, CouponCounts], totals: dict[str, Totals]
    ) -> BatchStats:
        usage = _usage(counts.get(batch.id, CouponCounts()), totals.get(batch.id, Totals()))
        held = await held_unissued(self.db, batch.tenant, batch.id)
        return BatchStats(
            batch_id=batch.id,
            campaign_id=batch.campaign_id,
            name=batch.spec.name,
            state=str(batch.state),
            stock=batch.spec.stock,
            unleased=batch.unleased,
            left=batch.unleased + held,
            issuing_blocked=batch.issuing_blocked,
            **usage.model_dump(),
        )
