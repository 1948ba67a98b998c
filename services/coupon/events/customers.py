"""The customer service's merges (group "coupon.customers"): the duplicate's wallet moves to
the survivor and back on an unmerge (service/merges.py)."""

from __future__ import annotations

from contracts import Envelope
from contracts.customer import CustomersMerged, CustomersUnmerged
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.coupon.service import merges


async def on_merged(tx: Tx, envelope: Envelope, event: CustomersMerged) -> None:
    await merges.on_merged(tx, envelope.tenant, event)


async def on_unmerged(tx: Tx, envelope: Envelope, event: CustomersUnmerged) -> None:
    await merges.on_unmerged(tx, envelope.tenant, event)


def customer_subscription() -> Subscription:
    return Subscription(
        "coupon.customers",
        handlers={CustomersMerged: on_merged, CustomersUnmerged: on_unmerged},
    )
