"""Tagging's read model of customers, kept from the customer service's events."""

from __future__ import annotations

from contracts import Envelope
from contracts.customer import (
    CustomerErased,
    CustomerRegistered,
    CustomersMerged,
    CustomersUnmerged,
    LifecycleStageChanged,
)
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.tagging.domain.profiles import CustomerProfile
from services.tagging.store import ProfileStore


async def on_customer_registered(tx: Tx, envelope: Envelope, event: CustomerRegistered) -> None:
    """Keep the customer in tagging's own read model and count them in the portrait, unless
    a merge into another customer arrived first."""
    store = ProfileStore(tx.db)
    profile = CustomerProfile(
        customer_id=event.customer_id,
        tenant=envelope.tenant,
        display_name=event.display_name,
        source_channel=event.source_channel,
        lifecycle_stage=event.lifecycle_stage,
        registered_at=event.registered_at,
        active=not await store.is_merged(envelope.tenant, event.customer_id, tx.session),
    )
    await store.add_profile(profile, tx.session)
    if profile.active:
        await store.count_in_portrait(profile, tx.session)


async def on_stage_changed(tx: Tx, envelope: Envelope, event: LifecycleStageChanged) -> None:
    store = ProfileStore(tx.db)
    profile = await store.profile(envelope.tenant, event.customer_id, session=tx.session)
    if profile is not None and profile.lifecycle_stage != event.to_stage:
        await store.change_stage(profile, event.to_stage, tx.session)


async def on_merged(tx: Tx, envelope: Envelope, event: CustomersMerged) -> None:
    """The merged customer leaves the audience; kept inactive in case the merge is undone."""
    await _set_active(tx, envelope.tenant, event.merged_id, active=False)


async def on_unmerged(tx: Tx, envelope: Envelope, event: CustomersUnmerged) -> None:
    await _set_active(tx, envelope.tenant, event.restored_id, active=True)


async def on_erased(tx: Tx, envelope: Envelope, event: CustomerErased) -> None:
    """Forget the customer entirely (their right to erasure)."""
    store = ProfileStore(tx.db)
    profile = await store.profile(envelope.tenant, event.customer_id, session=tx.session)
    await store.remember_merged(envelope.tenant, event.customer_id, False, tx.session)
    if profile is None:
        return
    if profile.active:
        await store.count_in_portrait(profile, tx.session, delta=-1)
    await store.forget(profile, tx.session)


async def _set_active(tx: Tx, tenant: str, customer_id: str, *, active: bool) -> None:
    store = ProfileStore(tx.db)
    await store.remember_merged(tenant, customer_id, not active, tx.session)
    profile = await store.profile(tenant, customer_id, session=tx.session)
    if profile is None or profile.active == active:
        return
    await store.set_active(profile, active, tx.session)
    await store.count_in_portrait(profile, tx.session, delta=1 if active else -1)


SUBSCRIPTIONS = [
    Subscription(
        group_id="tagging.customer-profiles",
        handlers={
            CustomerRegistered: on_customer_registered,
            LifecycleStageChanged: on_stage_changed,
            CustomersMerged: on_merged,
            CustomersUnmerged: on_unmerged,
            CustomerErased: on_erased,
        },
    )
]
