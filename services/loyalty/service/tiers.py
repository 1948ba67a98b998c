"""Tier use cases: growth value from orders (inside the order's transaction), the periodic
evaluation with its warning, and reading a member's tier and its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.loyalty import TierChanged, TierDowngradeWarned
from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx, UnitOfWork
from services.loyalty.domain import tiers as rules
from services.loyalty.domain.tiers import MemberTier, Tier, TierChange, TierScheme
from services.loyalty.store.schemes import SchemeStore
from services.loyalty.store.tiers import MemberTierStore


@dataclass
class Standing:
    """A member's tier as an order's earning sees it."""

    scheme: TierScheme | None
    member: MemberTier

    @property
    def tier(self) -> Tier | None:
        return self.scheme.tier(self.member.tier_id) if self.scheme else None

    @property
    def points_multiplier(self) -> int:
        return self.tier.points_multiplier if self.tier else 100


async def standing(tx: Tx, tenant: str, customer_id: str) -> Standing:
    scheme = await SchemeStore(tx.db).get(tenant, TierScheme, session=tx.session)
    member = await MemberTierStore(tx.db).get(tenant, customer_id, session=tx.session)
    return Standing(scheme, member)


async def grow(tx: Tx, tenant: str, held: Standing, amount: int, at: datetime) -> None:
    """Add (or take back) growth value; an upgrade it causes is recorded and published."""
    if held.scheme is None or not amount:
        return
    member, change = rules.add_growth(held.member, held.scheme, amount, at)
    await save_member(tx, tenant, held.scheme, member, change)


async def save_member(
    tx: Tx,
    tenant: str,
    scheme: TierScheme,
    member: MemberTier,
    change: TierChange | None,
    warning: rules.TierWarning | None = None,
) -> MemberTier:
    store = MemberTierStore(tx.db)
    saved = await store.put(tenant, member, tx.session, next_due_at=member.next_due_at(scheme))
    if change is not None:
        await store.record(tenant, change, tx.session)
        await tx.emit(_changed(change), tenant=tenant)
    if warning is not None:
        await tx.emit(TierDowngradeWarned(**warning.model_dump()), tenant=tenant)
    return saved


def _changed(change: TierChange) -> TierChanged:
    return TierChanged(
        customer_id=change.customer_id,
        from_tier=change.from_tier,
        to_tier=change.to_tier,
        direction=change.direction,
        reason=change.reason,
        growth=change.growth,
        changed_at=change.at,
    )


class TierService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.db = uow.db

    async def set_scheme(self, tenant: str, scheme: TierScheme, *, changed_by: str) -> None:
        await SchemeStore(self.db).put(tenant, scheme, changed_by=changed_by)

    async def scheme(self, tenant: str) -> TierScheme | None:
        return await SchemeStore(self.db).get(tenant, TierScheme)

    async def member(self, tenant: str, customer_id: str) -> tuple[MemberTier, TierScheme | None]:
        member = await MemberTierStore(self.db).get(tenant, customer_id)
        return member, await self.scheme(tenant)

    async def changes(self, tenant: str, customer_id: str) -> list[TierChange]:
        return await MemberTierStore(self.db).changes(tenant, customer_id)

    async def evaluate(self, tenant: str, customer_id: str, now: datetime | None = None) -> None:
        """Run what is due for one member by `now`: the warning, or the evaluation."""
        now = now or utcnow()

        async def work(tx: Tx) -> None:
            held = await standing(tx, tenant, customer_id)
            if held.scheme is None or held.member.version == 0:
                return
            member, change, warning = rules.evaluate(held.member, held.scheme, now)
            if member != held.member:
                await save_member(tx, tenant, held.scheme, member, change, warning)

        await self.uow.run(work)

    async def evaluate_due(self, now: datetime | None = None, limit: int = 200) -> int:
        """One sweep round over members with an evaluation or warning due."""
        now = now or utcnow()
        due = await MemberTierStore(self.db).due(now, limit)
        for tenant, customer_id in due:
            await self.evaluate(tenant, customer_id, now)
        return len(due)
