"""Lifecycle stage moves that other parts of the customer service trigger."""

from __future__ import annotations

from datetime import datetime

from contracts.customer import LifecycleStageChanged
from servicekit.unit_of_work import Tx
from services.customer.domain.customer import LifecycleStage
from services.customer.domain.lifecycle import promotion_after_first_order
from services.customer.store.customers import CustomerStore


async def promote_after_first_order(tx: Tx, tenant: str, customer_id: str, *, at: datetime) -> None:
    """In the caller's transaction: a lead or prospect whose first order is paid becomes a
    customer. Other stages are left as they are (an at-risk customer who buys again is
    moved back by the lifecycle rules, not here)."""
    store = CustomerStore(tx.db)
    customer = await store.get(tenant, customer_id, session=tx.session)
    if customer is None:
        return
    change = promotion_after_first_order(customer, at=at)
    if change is None:
        return
    await store.record_stage_change(tenant, customer_id, change, session=tx.session)
    await tx.emit(
        LifecycleStageChanged(
            customer_id=customer_id,
            from_stage=change.from_stage,
            to_stage=change.to_stage,
            reason=change.reason,
            changed_at=change.at,
        ),
        tenant=tenant,
    )


__all__ = ["LifecycleStage", "promote_after_first_order"]
