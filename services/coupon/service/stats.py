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
    sub_budgets,
    totals_of,
)

#: How many sub-budgets (at any depth) a budget's stats look through at most.
MAX_SUB_BUDGETS = 500


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


class SubBudgetLine(BaseModel):
    budget_id: str
    name: str
    owner: str
    total: int
    remaining: int
    target_gmv: int | None
    #: With its own sub-budgets' orders.
    achieved_gmv: int


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
    #: GMV of the paid orders that used coupons of this budget's campaigns or of its
    #: sub-budgets' (a department's target is met by its regions), net of refunds.
    achieved_gmv: int
    #: Of which the budget's own campaigns.
    own_gmv: int
    #: What is left to reach the target (0 once reached; None without a target).
    remaining_gmv: int | None
    orders: int
    #: The budget alert is raised: no new campaign approvals under the budget.
    approvals_blocked: bool
    #: Its consumed share reached the alert line too: no issuing under it.
    issuing_blocked: bool
    campaigns: list[CampaignLine]
    sub_budgets: list[SubBudgetLine]


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
        tree = await self._descendants(tenant, budget_id)
        ids = [budget_id, *(d["_id"] for d in tree)]
        by_budget = await self.stats.order_totals(tenant, "budget_id", ids, by="budget_id")
        achieved = totals_of(by_budget)
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
            own_gmv=by_budget.get(budget_id, Totals()).gmv,
            remaining_gmv=None if target is None else max(0, target - achieved.gmv),
            orders=achieved.orders,
            approvals_blocked=budget.approvals_blocked,
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
            sub_budgets=[
                SubBudgetLine(
                    budget_id=d["_id"],
                    name=d["name"],
                    owner=d["owner"],
                    total=int(d["amount"]),
                    remaining=int(d["remaining"]),
                    target_gmv=d.get("target_gmv"),
                    achieved_gmv=sum(by_budget.get(i, Totals()).gmv for i in d["subtree"]),
                )
                for d in tree
                if d["parent_id"] == budget_id
            ],
        )

    async def _descendants(self, tenant: str, budget_id: str) -> list[Document]:
        """Every budget split from this one, at any depth, each with `subtree`: its own id
        and its descendants' ids."""
        found: list[Document] = []
        level = [budget_id]
        while level and len(found) < MAX_SUB_BUDGETS:
            children = [c for p in level for c in await sub_budgets(self.db, tenant, p)]
            found += children
            level = [c["_id"] for c in children]
        by_id = {d["_id"]: {**d, "subtree": [d["_id"]]} for d in found}
        for d in reversed(found):  # children after parents: fold each into its parent
            parent = by_id.get(d["parent_id"])
            if parent is not None:
                parent["subtree"] += by_id[d["_id"]]["subtree"]
        return [by_id[d["_id"]] for d in found]

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
