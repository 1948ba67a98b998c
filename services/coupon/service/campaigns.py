"""Campaign use cases: draft, submit, approve (reserve the maximum subsidy and make the
batches), reject, start (batches open), end (batches close, the unused reservation is
released).

No interleaving of approvals can overspend a budget: the reservation is one update whose
filter requires `remaining >= max_subsidy`, inside the transaction that moves the campaign
from pending to approved; two approvals of one budget conflict on its document and the
loser runs again against what the winner left."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta

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
from services.coupon.domain.holds import still_may_cost
from services.coupon.service.budgets import raise_alerts
from services.coupon.service.holds import Holding
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
        holding: Holding,
    ) -> None:
        self.uow = uow
        self.campaigns = campaigns
        self.budgets = budgets
        self.batches = batches
        self.coupons = coupons
        #: Tenants' policies: the margin rules each tenant's batches are checked against.
        self.policies = policies
        #: What an ended campaign still holds, by when its coupons stop costing anything.
        self.holding = holding

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
        if reserved.approvals_blocked:  # its alert is raised (monitoring): top it up first
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
        """Claiming stops; the reservation keeps only what the coupons still usable may
        cost, held per expiry bucket and released as those pass (service/holds.py); the
        rest goes back to the budget now."""
        await self.batches.set_state(tenant, campaign.id, BatchState.ENDED, tx.session)
        holds = await self._still_held(tx, tenant, campaign, now)
        held = sum(holds.values())
        release = max(0, campaign.reserved - held)
        if held > campaign.reserved:  # never hold more than is reserved
            holds = _scaled_down(holds, campaign.reserved)
        await self.holding.store.open(tenant, campaign.id, campaign.budget_id, holds, tx.session)
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

    async def _still_held(
        self, tx: Tx, tenant: str, campaign: Campaign, now: datetime
    ) -> dict[datetime, int]:
        """What the campaign's coupons may still cost, by when they stop (one scan of the
        coupons still valid, or valid within the lock time)."""
        specs = {s.key: s for s in campaign.batches}
        by_batch = {batch_id: specs[key] for key, batch_id in campaign.batch_ids.items()}
        lock = self.holding.lock_seconds
        since = now - timedelta(seconds=lock)
        coupons = await self.coupons.valid_since(tenant, list(by_batch), since, tx.session)
        holds: dict[datetime, int] = defaultdict(int)
        for coupon in coupons:
            spec = by_batch[coupon.batch_id]
            follow = specs.get(spec.discount.follow_up_batch or "")
            worth = still_may_cost(coupon, spec, follow, now, lock)
            if worth:
                holds[self.holding.until(coupon)] += worth
        return dict(holds)


def _scaled_down(holds: dict[datetime, int], most: int) -> dict[datetime, int]:
    """Holds cut (latest first) to add up to `most`: a reservation short of its coupons'
    worth (issued meanwhile) holds what it has, and late uses reserve the rest."""
    kept: dict[datetime, int] = {}
    left = most
    for until in sorted(holds):
        kept[until] = min(holds[until], left)
        left -= kept[until]
    return kept


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
