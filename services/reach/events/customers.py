"""Customer events: consent (kept current for the pressure check), what templates may say of
a customer, merges and their undoing (a merged-away customer is never contacted; its touches
count for the survivor's orders), erasure, paid orders (attribution and rules) and advisors'
reminders (rules)."""

from __future__ import annotations

from datetime import timedelta

from contracts import Envelope, Event
from contracts.customer import (
    ConsentGranted,
    ConsentWithdrawn,
    CustomerErased,
    CustomerProfileChanged,
    CustomerRegistered,
    CustomersMerged,
    CustomersUnmerged,
    FollowUpReminderDue,
    OrderPaid,
)
from servicekit.consumer import Handler, Subscription
from servicekit.unit_of_work import Tx
from services.reach.domain.rules import Trigger
from services.reach.providers import sandbox
from services.reach.service import receipts, triggers
from services.reach.store.audience import AudienceStore
from services.reach.store.messages import MessageStore


async def consent_granted(tx: Tx, envelope: Envelope, event: ConsentGranted) -> None:
    await AudienceStore(tx.db).record_consent(
        envelope.tenant,
        event.customer_id,
        event.channel,
        event.purpose,
        granted=True,
        at=event.granted_at,
        session=tx.session,
    )


async def consent_withdrawn(tx: Tx, envelope: Envelope, event: ConsentWithdrawn) -> None:
    await AudienceStore(tx.db).record_consent(
        envelope.tenant,
        event.customer_id,
        event.channel,
        event.purpose,
        granted=False,
        at=event.withdrawn_at,
        session=tx.session,
    )


async def registered(tx: Tx, envelope: Envelope, event: CustomerRegistered) -> None:
    await AudienceStore(tx.db).record_profile(
        envelope.tenant, event.customer_id, {"display_name": event.display_name}, tx.session
    )
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.CUSTOMER_REGISTERED,
        event_id=envelope.id,
        customer_id=event.customer_id,
        occurred_at=event.registered_at,
        facts={"source_channel": event.source_channel, "lifecycle_stage": event.lifecycle_stage},
    )


async def profile_changed(tx: Tx, envelope: Envelope, event: CustomerProfileChanged) -> None:
    month = event.attributes.get("birthday_month")
    if "birthday_month" in event.attributes:
        await AudienceStore(tx.db).record_profile(
            envelope.tenant, event.customer_id, {"birthday_month": month}, tx.session
        )


async def merged(tx: Tx, envelope: Envelope, event: CustomersMerged) -> None:
    await AudienceStore(tx.db).record_merge(
        envelope.tenant, event.merge_id, event.survivor_id, event.merged_id, tx.session
    )


async def unmerged(tx: Tx, envelope: Envelope, event: CustomersUnmerged) -> None:
    await AudienceStore(tx.db).record_unmerge(
        envelope.tenant, event.merge_id, event.survivor_id, event.restored_id, tx.session
    )


async def erased(tx: Tx, envelope: Envelope, event: CustomerErased) -> None:
    await AudienceStore(tx.db).forget(envelope.tenant, event.customer_id, tx.session)
    await MessageStore(tx.db).forget(envelope.tenant, event.customer_id, tx.session)
    await sandbox.forget(tx.db, envelope.tenant, event.customer_id, tx.session)


def attributing(window: timedelta) -> Handler:
    async def order_paid(tx: Tx, envelope: Envelope, event: OrderPaid) -> None:
        await receipts.attribute(tx, envelope.tenant, event, window)
        await paid_rules(tx, envelope, event)

    return order_paid


async def paid_rules(tx: Tx, envelope: Envelope, event: OrderPaid) -> None:
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.ORDER_PAID,
        event_id=envelope.id,
        customer_id=event.customer_id,
        occurred_at=event.paid_at,
        facts={
            "amount": event.amount,
            "channel": event.channel,
            "store_id": event.store_id,
            "first_order": event.first_order,
        },
    )


async def reminder_due(tx: Tx, envelope: Envelope, event: FollowUpReminderDue) -> None:
    await triggers.on_event(
        tx,
        envelope.tenant,
        Trigger.FOLLOW_UP_REMINDER_DUE,
        event_id=envelope.id,
        customer_id=event.customer_id,
        occurred_at=event.due_at,
        facts={"owner_id": event.owner_id},
        variables={"note": event.note},
        advisor_id=event.owner_id,
    )


def subscription(attribution_window: timedelta) -> Subscription:
    return Subscription(
        "reach.customer", handlers={**HANDLERS, OrderPaid: attributing(attribution_window)}
    )


HANDLERS: dict[type[Event], Handler] = {
    ConsentGranted: consent_granted,
    ConsentWithdrawn: consent_withdrawn,
    CustomerRegistered: registered,
    CustomerProfileChanged: profile_changed,
    CustomersMerged: merged,
    CustomersUnmerged: unmerged,
    CustomerErased: erased,
    FollowUpReminderDue: reminder_due,
}
