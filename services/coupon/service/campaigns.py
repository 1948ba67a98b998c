"""Campaign use cases: draft, submit, approve (reserve the maximum subsidy and make the
batches), reject, start (batches open), end (batches close, the unused reservation is
released).

No interleaving of approvals can overspend a budget: the reservation is one update whose
filter requires `remaining >= max_subsidy`, inside the transaction that moves the campaign
from pending to approved; two approvals of one budget conflict on its document and the
loser runs again against what the winner left."""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts.coupon import CampaignApproved, CampaignEnded
from servicekit.clock import utcnow
from servicekit.context import Actor
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.domain import campaigns as rules
from services.coupon.domain.batches import check_campaign_batches
from services.coupon.domain.budgets import Movement
from services.coupon.domain.campaigns import Campaign, CampaignDraft, CampaignState, Step
from services.coupon.service.budgets import raise_alerts
from services.coupon.service.policies import PolicyBook
from services.coupon.store.batches import Batch, BatchState, BatchStore
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.campaigns import CampaignStore, StateMoved
from services.coupon.store.coupons import CouponStore


class CampaignService:
    def __init__(
        self,
        uow: UnitOfWork,
        campaigns: CampaignStore,
        budgets: BudgetStore,
        batches: BatchStore,
        coupons: CouponStore,
        policies: PolicyBook,
    ) -> None:
        self.uow = uow
        self.campaigns = campaigns
        self.budgets = budgets
        self.batches = batches
        self.coupons = coupons
        #: Tenants' policies: the margin rules each tenant's batches are checked against.
        self.policies = policies

    async def draft(self, tenant: str, draft: CampaignDraft, actor: Actor) -> Campaign:
        check_campaign_batches(draft.batches, (await self.policies.of(tenant)).margin)
        campaign = rules.drafted(f"cmp_{uuid.uuid4().hex[:16]}", draft, by=actor.id, now=utcnow())

        async def work(tx: Tx) -> Campaign:
            if await self.budgets.get(tenant, draft.budget_id, tx.session) is None:
                raise InvalidInput("no such budget", field="budget_id", code="budget_not_found")
            await self.campaigns.add(tenant, campaign, tx.session)
            return campaign

        return await self.uow.run(work)

    async def get(self, tenant: str, campaign_id: str) -> Campaign:
        campaign = await self.campaigns.get(tenant, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
        return campaign

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[Campaign], str | None]:
        return await self.campaigns.page(tenant, page)

    async def batches_of(self, tenant: str, campaign_id: str) -> list[Batch]:
        await self.get(tenant, campaign_id)
        return await self.batches.of_campaign(tenant, campaign_id)

    async def take_step(
        self, tenant: str, campaign_id: str, step: Step, actor: Actor, note: str | None
    ) -> Campaign:
        async def work(tx: Tx) -> Campaign:
            campaign = await self.campaigns.get(tenant, campaign_id, tx.session)
            if campaign is None:
                raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
            now = utcnow()
            moved = rules.step(campaign, step, by=actor.id, now=now, note=note)
            moved = await self._effects(tx, tenant, moved, step, actor, now)
            try:
                await self.campaigns.replace(tenant, moved, campaign.state, tx.session)
            except StateMoved:
                raise Conflict(
                    "the campaign changed meanwhile; retry", code="campaign_state"
                ) from None
            return moved

        return await self.uow.run(work)

    async def _effects(
        self, tx: Tx, tenant: str, campaign: Campaign, step: Step, actor: Actor, now: datetime
    ) -> Campaign:
        if step == Step.APPROVE:
            return await self._approve(tx, tenant, campaign, actor, now)
        if step == Step.START:
            await self.batches.set_state(tenant, campaign.id, BatchState.ACTIVE, tx.session)
        if step == Step.END:
            return await self._end(tx, tenant, campaign, actor, now)
        return campaign

    async def _approve(
        self, tx: Tx, tenant: str, campaign: Campaign, actor: Actor, now: datetime
    ) -> Campaign:
        budget = await self.budgets.get(tenant, campaign.budget_id, tx.session)
        if budget is None or budget.ends_at <= now:
            raise Conflict("the campaign's budget period is over", code="budget_expired")
        reserved = await self.budgets.move(
            tenant,
            budget.id,
            Movement.RESERVE,
            campaign.max_subsidy,
            tx.session,
            campaign_id=campaign.id,
        )
        if reserved is None:
            raise Conflict(
                f"the budget has {budget.remaining} remaining, less than the campaign's "
                f"maximum subsidy {campaign.max_subsidy}",
                code="budget_exceeded",
                remaining=budget.remaining,
                max_subsidy=campaign.max_subsidy,
            )
        if reserved.issuing_blocked:  # its alert is raised (monitoring): top it up first
            raise Conflict(  # the reservation above is undone with the transaction
                "the budget is at or below its alert line; top it up first",
                code="budget_blocked",
                remaining=budget.remaining,
            )
        await raise_alerts(tx, tenant, self.budgets, reserved)
        batches = _make_batches(tenant, campaign, now)
        await self.batches.add_many(batches, tx.session)
        ids = {b.spec.key: b.id for b in batches}
        await tx.emit(
            CampaignApproved(
                campaign_id=campaign.id,
                budget_id=budget.id,
                reserved=campaign.max_subsidy,
                batch_ids=list(ids.values()),
                approved_by=actor.id,
                approved_at=now,
            ),
            tenant=tenant,
        )
        return campaign.model_copy(update={"reserved": campaign.max_subsidy, "batch_ids": ids})

    async def _end(
        self, tx: Tx, tenant: str, campaign: Campaign, actor: Actor, now: datetime
    ) -> Campaign:
        """Claiming stops; what is not held for coupons still usable goes back to the budget."""
        await self.batches.set_state(tenant, campaign.id, BatchState.ENDED, tx.session)
        held = await self._still_held(tenant, campaign, now)
        release = max(0, campaign.reserved - held)
        if release:
            await self.budgets.move(
                tenant,
                campaign.budget_id,
                Movement.RELEASE,
                release,
                tx.session,
                campaign_id=campaign.id,
            )
        await tx.emit(
            CampaignEnded(
                campaign_id=campaign.id,
                budget_id=campaign.budget_id,
                released=release,
                ended_by=actor.id,
                ended_at=now,
            ),
            tenant=tenant,
        )
        return campaign.model_copy(
            update={
                "reserved": campaign.reserved - release,
                "released": campaign.released + release,
            }
        )

    async def _still_held(self, tenant: str, campaign: Campaign, now: datetime) -> int:
        """The most the campaign's outstanding coupons (and the coupons that return coupons
        may still issue) can cost."""
        held = 0
        specs = {s.key: s for s in campaign.batches}
        for key, batch_id in campaign.batch_ids.items():
            spec = specs[key]
            outstanding = await self.coupons.outstanding(tenant, batch_id, now)
            value = spec.discount.max_value()
            if spec.discount.follow_up_batch:
                value += specs[spec.discount.follow_up_batch].discount.max_value()
            held += outstanding * value
        return held


def _make_batches(tenant: str, campaign: Campaign, now: datetime) -> list[Batch]:
    ids = {spec.key: f"bat_{uuid.uuid4().hex[:16]}" for spec in campaign.batches}
    return [
        Batch(
            id=ids[spec.key],
            tenant=tenant,
            campaign_id=campaign.id,
            spec=spec,
            follow_up_batch_id=ids.get(spec.discount.follow_up_batch or ""),
            state=BatchState.SCHEDULED,
            unleased=spec.stock,
            created_at=now,
        )
        for spec in campaign.batches
    ]


__all__ = ["CampaignService", "CampaignState"]
