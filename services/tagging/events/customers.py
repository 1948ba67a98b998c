from __future__ import annotations

from contracts import Envelope
from contracts.customer import CustomerRegistered
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.tagging.domain.profiles import CustomerProfile
from services.tagging.store import ProfileStore


async def on_customer_registered(tx: Tx, envelope: Envelope, event: CustomerRegistered) -> None:
    """Keep the customer in tagging's own read model and count them in the portrait."""
    profile = CustomerProfile(
        customer_id=event.customer_id,
        tenant=envelope.tenant,
        display_name=event.display_name,
        source_channel=event.source_channel,
        lifecycle_stage=event.lifecycle_stage,
        registered_at=event.registered_at,
    )
    store = ProfileStore(tx.db)
    await store.add_profile(profile, tx.session)
    await store.count_in_portrait(profile, tx.session)


SUBSCRIPTIONS = [
    Subscription(
        group_id="tagging.customer-profiles",
        handlers={CustomerRegistered: on_customer_registered},
    )
]
