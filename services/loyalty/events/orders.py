"""The consumer of the customer service's events: orders earn and take back points and
growth value; profile changes keep the birthday month the birthday bonus needs, and an
erasure forgets it; a merge moves the duplicate's assets to the survivor, an unmerge moves
back what is still there. Each runs in the transaction that records the event id, so a
redelivery changes nothing."""

from __future__ import annotations

from contracts import Envelope
from contracts.customer import (
    CustomerErased,
    CustomerProfileChanged,
    CustomersMerged,
    CustomersUnmerged,
    OrderCancelled,
    OrderPaid,
    OrderRefunded,
)
from servicekit.consumer import Subscription
from servicekit.unit_of_work import Tx
from services.loyalty.service import merges, orders
from services.loyalty.service.profiles import remember_birthday_month

GROUP_ID = "loyalty.orders"


async def on_paid(tx: Tx, envelope: Envelope, event: OrderPaid) -> None:
    await orders.on_order_paid(tx, envelope.tenant, event)


async def on_refunded(tx: Tx, envelope: Envelope, event: OrderRefunded) -> None:
    await orders.on_order_refunded(tx, envelope.tenant, event)


async def on_cancelled(tx: Tx, envelope: Envelope, event: OrderCancelled) -> None:
    await orders.on_order_cancelled(tx, envelope.tenant, event)


async def on_profile_changed(tx: Tx, envelope: Envelope, event: CustomerProfileChanged) -> None:
    if "birthday_month" in event.attributes:
        month = event.attributes["birthday_month"]
        await remember_birthday_month(
            tx, envelope.tenant, event.customer_id, month if isinstance(month, int) else None
        )


async def on_erased(tx: Tx, envelope: Envelope, event: CustomerErased) -> None:
    """The birthday month is the only profile data loyalty keeps; ledgers stay (they are
    the brand's accounting records and name no one but by id)."""
    await remember_birthday_month(tx, envelope.tenant, event.customer_id, None)


async def on_merged(tx: Tx, envelope: Envelope, event: CustomersMerged) -> None:
    await merges.on_merged(tx, envelope.tenant, event)


async def on_unmerged(tx: Tx, envelope: Envelope, event: CustomersUnmerged) -> None:
    await merges.on_unmerged(tx, envelope.tenant, event)


SUBSCRIPTIONS = [
    Subscription(
        group_id=GROUP_ID,
        handlers={
            OrderPaid: on_paid,
            OrderRefunded: on_refunded,
            OrderCancelled: on_cancelled,
            CustomerProfileChanged: on_profile_changed,
            CustomerErased: on_erased,
            CustomersMerged: on_merged,
            CustomersUnmerged: on_unmerged,
        },
    )
]
