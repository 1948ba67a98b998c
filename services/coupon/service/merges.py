"""Customer merges, as the customer service reports them: the duplicate's wallet (coupons in
any state, with their ids, so the per-customer limit keys stay as they were claimed) and the
partner coupons given to them move to the survivor, and their paid orders count for the
survivor's new-versus-returning judgement. An unmerge moves back exactly what came over.
Each runs in the consumer's transaction, so a merge is never half applied."""

from __future__ import annotations

from contracts.customer import CustomersMerged, CustomersUnmerged
from servicekit.rekeying import rekey, rekey_back
from servicekit.unit_of_work import Tx
from services.coupon.store.customers import CustomerOrdersStore
from services.coupon.store.merges import MOVED, CouponMerge, MergeStore


async def on_merged(tx: Tx, tenant: str, event: CustomersMerged) -> None:
    merges = MergeStore(tx.db)
    if await merges.get(tenant, event.merge_id, tx.session) is not None:
        return
    duplicate, survivor = event.merged_id, event.survivor_id
    record = CouponMerge(
        merge_id=event.merge_id,
        survivor_id=survivor,
        merged_id=duplicate,
        moved=await rekey(tx.db, MOVED, tenant, duplicate, survivor, tx.session),
        paid_orders=await CustomerOrdersStore(tx.db).move_paid(
            tenant, duplicate, survivor, tx.session
        ),
    )
    await merges.put(tenant, record, tx.session)


async def on_unmerged(tx: Tx, tenant: str, event: CustomersUnmerged) -> None:
    merges = MergeStore(tx.db)
    record = await merges.to_undo(tenant, event.merge_id, tx.session)
    if record is None:
        return
    await rekey_back(tx.db, record.moved, record.merged_id, tx.session)
    await CustomerOrdersStore(tx.db).move_paid(
        tenant, record.survivor_id, record.merged_id, tx.session, count=record.paid_orders
    )
    await merges.undone(tenant, record, tx.session)


async def owner_of(tx: Tx, tenant: str, customer_id: str) -> str:
    """Who a customer's late event counts for: the survivor if they are merged away."""
    return await MergeStore(tx.db).survivor_of(tenant, customer_id, tx.session) or customer_id
