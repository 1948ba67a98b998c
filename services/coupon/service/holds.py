"""An ended campaign's reservation, held per expiry bucket (store/holds.py) and released
bucket by bucket as its coupons can no longer cost anything."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.domain.budgets import Movement
from services.coupon.domain.coupons import Coupon
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.holds import HoldStore, hold_until


@dataclass(frozen=True)
class Holding:
    """The holds, and the settings that say how long a coupon can still cost."""

    store: HoldStore
    lock_seconds: int
    bucket_seconds: int

    def until(self, coupon: Coupon) -> datetime:
        return hold_until(coupon.valid_until, self.lock_seconds, self.bucket_seconds)


async def release_due_holds(
    uow: UnitOfWork,
    holds: HoldStore,
    budgets: BudgetStore,
    campaigns: CampaignStore,
    now: datetime | None = None,
    limit: int = 500,
) -> int:
    """Release every due hold: one transaction and one ledger entry per campaign per
    round, however many buckets (and coupons) it covers. Idempotent: a hold is deleted in
    the transaction that releases it, and two sweepers conflict on it."""
    now = now or utcnow()
    by_campaign: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doc in await holds.due(now, limit):
        by_campaign[(doc["tenant"], doc["campaign_id"])].append(doc["_id"])
    released = 0
    for (tenant, campaign_id), ids in by_campaign.items():

        async def work(
            tx: Tx, tenant: str = tenant, cid: str = campaign_id, ids: list[str] = ids
        ) -> int:
            return await _release(tx, holds, budgets, campaigns, tenant, cid, ids, now)

        released += await uow.run(work)
    return released


async def _release(
    tx: Tx,
    holds: HoldStore,
    budgets: BudgetStore,
    campaigns: CampaignStore,
    tenant: str,
    campaign_id: str,
    ids: list[str],
    now: datetime,
) -> int:
    gone = await holds.remove(ids, now, tx.session)
    campaign = await campaigns.get(tenant, campaign_id, tx.session)
    if not gone or campaign is None:
        return 0
    amount = min(sum(int(d["amount"]) for d in gone), campaign.reserved)
    if amount <= 0:
        return 0
    last = max(d["until"] for d in gone)
    note = f"coupons no longer usable (held until {last.isoformat()})"
    moved = await budgets.move(
        tenant, campaign.budget_id, Movement.RELEASE, amount, tx.session,
        campaign_id=campaign_id, note=note,
    )  # fmt: skip
    if moved is None:  # the budget holds less than its campaigns: a broken invariant
        raise RuntimeError(f"budget {campaign.budget_id} refused to release a hold")
    await campaigns.draw(tenant, campaign_id, {"reserved": -amount, "released": amount}, tx.session)
    return amount
