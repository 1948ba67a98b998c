"""Customer merges and unmerges, as the customer service reports them.

A merge moves the duplicate's points (lots with their expiry, held points, debt), stored
value (principal and bonus), growth value, benefit grants, cards and order earnings to the
survivor, and records what moved. An unmerge moves back what came over and is still there:
the lots and held points not spent or expired since, up to the principal and bonus moved,
the growth value moved, and the re-keyed documents. One transaction each (the consumer's,
with the event id), so a merge is never half applied."""

from __future__ import annotations

from datetime import datetime

from contracts.customer import CustomersMerged, CustomersUnmerged
from contracts.loyalty import PointsTransferred
from servicekit.clock import utcnow
from servicekit.rekeying import rekey, rekey_back
from servicekit.unit_of_work import Tx
from services.loyalty.domain import merging
from services.loyalty.domain import stored_value as value_rules
from services.loyalty.domain.ledger import Cause, Posted
from services.loyalty.domain.tiers import MemberTier, TierScheme, add_growth
from services.loyalty.service.accounts import OpenAccount, commit, open_account
from services.loyalty.service.stored_value import changed_event
from services.loyalty.service.tiers import save_member
from services.loyalty.store.merges import REKEYED, MergeRecord, MergeStore
from services.loyalty.store.schemes import SchemeStore
from services.loyalty.store.stored_value import StoredValueStore
from services.loyalty.store.tiers import MemberTierStore


async def on_merged(tx: Tx, tenant: str, event: CustomersMerged) -> None:
    merges = MergeStore(tx.db)
    if await merges.get(tenant, event.merge_id, tx.session) is not None:
        return
    now = utcnow()
    duplicate = await open_account(tx, tenant, event.merged_id, now)
    survivor = await open_account(tx, tenant, event.survivor_id, now)
    lot_ids = [x.lot_id for x in duplicate.account.lots]
    pending_ids = [p.lot_id for p in duplicate.account.pending]
    out, into = merging.merge(duplicate.account, survivor.account, _cause(event.merge_id, now))
    await _post_transfer(tx, event.merge_id, (duplicate, out), (survivor, into))
    principal, bonus = await _move_value(
        tx, tenant, event.merged_id, event.survivor_id, event.merge_id, None, now
    )
    growth = await _move_growth(tx, tenant, event.merged_id, event.survivor_id, now)
    record = MergeRecord(
        merge_id=event.merge_id,
        survivor_id=event.survivor_id,
        merged_id=event.merged_id,
        lot_ids=lot_ids,
        pending_ids=pending_ids,
        principal=principal,
        bonus=bonus,
        growth_by_day=growth,
        rekeyed=await rekey(
            tx.db, REKEYED, tenant, event.merged_id, event.survivor_id, tx.session, versioned=True
        ),
    )
    await merges.put(tenant, record, tx.session)


async def on_unmerged(tx: Tx, tenant: str, event: CustomersUnmerged) -> None:
    merges = MergeStore(tx.db)
    record = await merges.to_undo(tenant, event.merge_id, tx.session)
    if record is None:
        return
    now = utcnow()
    survivor = await open_account(tx, tenant, record.survivor_id, now)
    restored = await open_account(tx, tenant, record.merged_id, now)
    cause = _cause(f"{event.merge_id}:undone", now)
    out, into = merging.unmerge(
        survivor.account, restored.account, set(record.lot_ids), set(record.pending_ids), cause
    )
    await _post_transfer(tx, event.merge_id, (survivor, out), (restored, into))
    moved = (record.principal, record.bonus)
    await _move_value(
        tx, tenant, record.survivor_id, record.merged_id, f"{event.merge_id}:undone", moved, now
    )
    await _take_growth_back(tx, tenant, record, now)
    await rekey_back(tx.db, record.rekeyed, record.merged_id, tx.session, versioned=True)
    await merges.undone(tenant, record, tx.session)


def _cause(merge_id: str, at: datetime) -> Cause:
    return Cause(source=f"merge:{merge_id}", at=at, reason="customer merge")


async def _post_transfer(
    tx: Tx, merge_id: str, giver: tuple[OpenAccount, Posted], taker: tuple[OpenAccount, Posted]
) -> None:
    for (opened, posted), (other, _) in ((giver, taker), (taker, giver)):
        opened.post(posted)
        if posted.entries:
            opened.events.append(
                PointsTransferred(
                    customer_id=opened.account.customer_id,
                    counterpart_id=other.account.customer_id,
                    merge_id=merge_id,
                    points=sum(e.points for e in posted.entries),
                    pending=sum(e.pending for e in posted.entries),
                    balance=opened.account.balance,
                    transferred_at=opened.now,
                )
            )
        await commit(tx, opened)


async def _move_value(
    tx: Tx,
    tenant: str,
    from_id: str,
    to_id: str,
    merge_id: str,
    limit: tuple[int, int] | None,
    now: datetime,
) -> tuple[int, int]:
    """Stored value from one customer to the other: all of it, or at most `limit`."""
    store = StoredValueStore(tx.db)
    giver = await store.get(tenant, from_id, session=tx.session)
    taker = await store.get(tenant, to_id, session=tx.session)
    principal, bonus = limit or (giver.principal, giver.bonus)
    if not (min(principal, giver.principal) or min(bonus, giver.bonus)):
        return 0, 0
    (gave, out), (took, into) = value_rules.transfer(
        giver, taker, principal, bonus, source=f"merge:{merge_id}", reference=merge_id, at=now
    )
    for account, entry in ((gave, out), (took, into)):
        saved = await store.put(tenant, account, entry, tx.session)
        await tx.emit(changed_event(saved, entry), tenant=tenant)
    return into.principal, into.bonus


async def _move_growth(
    tx: Tx, tenant: str, from_id: str, to_id: str, now: datetime
) -> dict[str, int]:
    """The duplicate's growth value joins the survivor's (an upgrade it makes is immediate)."""
    scheme = await SchemeStore(tx.db).get(tenant, TierScheme, session=tx.session)
    members = MemberTierStore(tx.db)
    duplicate = await members.get(tenant, from_id, session=tx.session)
    if scheme is None or not duplicate.growth_by_day:
        return {}
    survivor = await members.get(tenant, to_id, session=tx.session)
    merged = _added(survivor, duplicate.growth_by_day, sign=1)
    after, change = add_growth(merged, scheme, 0, now)
    await save_member(tx, tenant, scheme, after, change)
    return dict(duplicate.growth_by_day)


async def _take_growth_back(tx: Tx, tenant: str, record: MergeRecord, now: datetime) -> None:
    """The growth that came over leaves the survivor (no downgrade before the evaluation)."""
    scheme = await SchemeStore(tx.db).get(tenant, TierScheme, session=tx.session)
    if scheme is None or not record.growth_by_day:
        return
    survivor = await MemberTierStore(tx.db).get(tenant, record.survivor_id, session=tx.session)
    after = _added(survivor, record.growth_by_day, sign=-1)
    await save_member(tx, tenant, scheme, after, None)


def _added(member: MemberTier, growth: dict[str, int], *, sign: int) -> MemberTier:
    """Growth added by day; taken back, never below zero on a day (a refund since the
    merge may have taken some of it back already)."""
    by_day = dict(member.growth_by_day)
    for day, value in growth.items():
        after = by_day.get(day, 0) + sign * value
        by_day[day] = max(after, 0) if sign < 0 else after
    total = max(member.lifetime_growth + sign * sum(growth.values()), 0)
    return member.model_copy(update={"growth_by_day": by_day, "lifetime_growth": total})
