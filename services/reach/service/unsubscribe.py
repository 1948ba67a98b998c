"""Unsubscribe (a reply or a link): consent for the channel's marketing is withdrawn here at
once, in the same transaction that queues the withdrawal for the customer service (which owns
consent); reach then records it there over HTTP, retrying until it is taken, and the
customer service's `consent_withdrawn` event comes back as a no-op."""

from __future__ import annotations

import uuid
from datetime import timedelta

from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx, UnitOfWork
from services.reach.domain.channels import Channel, Purpose
from services.reach.service.peers import CustomerContacts
from services.reach.store.audience import AudienceStore

RETRY_AFTER = timedelta(seconds=5)


async def unsubscribe(
    uow: UnitOfWork,
    audience: AudienceStore,
    tenant: str,
    customer_id: str,
    channel: Channel,
    source: str,
) -> str:
    return await uow.run(lambda tx: withdraw_in(tx, audience, tenant, customer_id, channel, source))


async def withdraw_in(
    tx: Tx, audience: AudienceStore, tenant: str, customer_id: str, channel: Channel, source: str
) -> str:
    """The withdrawal within the caller's transaction (a refused call with its task)."""
    now = utcnow()
    forward_id = f"fwd_{uuid.uuid4().hex}"
    purpose = str(Purpose.MARKETING)
    await audience.record_consent(
        tenant, customer_id, str(channel), purpose, granted=False, at=now, session=tx.session
    )
    doc = {"_id": forward_id, "tenant": tenant, "customer_id": customer_id, "channel": str(channel)}
    doc |= {"purpose": purpose, "source": source, "next_at": now, "attempts": 0}
    await audience.add_forward(doc, tx.session)
    return forward_id


async def forward_due(audience: AudienceStore, contacts: CustomerContacts) -> int:
    """Tell the customer service of queued withdrawals; how many it took."""
    taken = 0
    for doc in await audience.due_forwards(utcnow()):
        ok = await contacts.withdraw(
            doc["tenant"], doc["customer_id"], doc["channel"], doc["purpose"], doc["source"]
        )
        if ok:
            await audience.forwarded(doc["_id"])
            taken += 1
        else:
            await audience.forward_later(
                doc["_id"], utcnow() + RETRY_AFTER * (1 + min(doc["attempts"], 10))
            )
    return taken
