"""The facts consumer: each customer event updates the customer's facts, then the tenant's
tag rules are re-evaluated for them, in the same transaction as the kit's record of the
event id (so a redelivered event changes nothing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from contracts import Envelope, Event
from contracts.customer import (
    BehaviourRecorded,
    ConsentGranted,
    ConsentWithdrawn,
    CustomerErased,
    CustomerProfileChanged,
    CustomerRegistered,
    CustomersMerged,
    CustomersUnmerged,
    LifecycleStageChanged,
    OwnerChanged,
    PurchaseStatsChanged,
)
from servicekit.clock import utcnow
from servicekit.consumer import Handler, Subscription
from servicekit.unit_of_work import Tx
from services.tagging.domain import facts_updates as updates
from services.tagging.domain.facts_updates import FactsRecord
from services.tagging.service.memberships import reevaluate
from services.tagging.service.rule_evaluation import reconcile
from services.tagging.store.facts import FactsStore

E = TypeVar("E", bound=Event)
Update = Callable[[FactsRecord, Any], FactsRecord]


async def _load(tx: Tx, tenant: str, customer_id: str) -> FactsRecord:
    record = await FactsStore(tx.db).get(tenant, customer_id, session=tx.session)
    return record or updates.blank(tenant, customer_id)


async def _save_and_evaluate(tx: Tx, *records: FactsRecord) -> None:
    """Save, then tag rules, then segments. A tag a rule changes re-evaluates the customer's
    segments itself (see `assignments`); otherwise it is done here, once."""
    now = utcnow()
    for record in records:
        await FactsStore(tx.db).save(record, tx.session)
        await _evaluate(tx, record.tenant, record.customer_id, record, now)


async def _evaluate(
    tx: Tx, tenant: str, customer_id: str, record: FactsRecord | None, now: datetime
) -> None:
    changes = await reconcile(tx, tenant=tenant, customer_id=customer_id, record=record, now=now)
    if not changes:
        await reevaluate(tx, tenant, [customer_id], now, known={customer_id: record}, touch=False)


def updating(update: Update) -> Handler:
    """A handler for an event about one customer (`customer_id`) whose change is `update`."""

    async def handle(tx: Tx, envelope: Envelope, event: Any) -> None:
        record = await _load(tx, envelope.tenant, event.customer_id)
        await _save_and_evaluate(tx, update(record, event))

    return handle


async def on_behaviour(tx: Tx, envelope: Envelope, event: BehaviourRecorded) -> None:
    """A merged customer's behaviour read after the merge (the merge is keyed by the survivor,
    the behaviour by the customer) counts for the survivor too; kept on the duplicate as well,
    so an unmerge takes back exactly what it added."""
    today = utcnow().date()
    record = await _load(tx, envelope.tenant, event.customer_id)
    changed = [updates.behaviour_recorded(record, event, today)]
    if record.merged_into is not None:
        survivor = await _load(tx, envelope.tenant, record.merged_into)
        changed.append(updates.behaviour_recorded(survivor, event, today))
    await _save_and_evaluate(tx, *changed)


async def on_profile_changed(tx: Tx, envelope: Envelope, event: CustomerProfileChanged) -> None:
    """Also remember the custom field keys seen, so rules may name them with their type."""
    record = updates.profile_changed(await _load(tx, envelope.tenant, event.customer_id), event)
    types = updates.custom_types(record)
    if types:
        await FactsStore(tx.db).remember_custom_fields(envelope.tenant, types, tx.session)
    await _save_and_evaluate(tx, record)


async def on_merged(tx: Tx, envelope: Envelope, event: CustomersMerged) -> None:
    """The duplicate's behaviour joins the survivor; the duplicate stays, marked merged, so
    the merge can be undone, and loses the tags its rules gave it."""
    survivor = await _load(tx, envelope.tenant, event.survivor_id)
    duplicate = await _load(tx, envelope.tenant, event.merged_id)
    if not duplicate.active:
        return  # already folded in
    today = utcnow().date()
    survivor = updates.merged_into(survivor, duplicate, today)
    await _save_and_evaluate(tx, survivor, updates.mark_merged(duplicate, event.survivor_id))


async def on_unmerged(tx: Tx, envelope: Envelope, event: CustomersUnmerged) -> None:
    survivor = await _load(tx, envelope.tenant, event.survivor_id)
    restored = await _load(tx, envelope.tenant, event.restored_id)
    if restored.active:
        return  # never merged here, or already restored
    survivor = updates.unmerged_from(survivor, restored, utcnow().date())
    await _save_and_evaluate(tx, survivor, updates.restore(restored))


async def on_erased(tx: Tx, envelope: Envelope, event: CustomerErased) -> None:
    """Forget the facts; the tags rules gave come off and the customer leaves every segment
    (what else tagging holds of the customer is the assignments' owner's to forget)."""
    await FactsStore(tx.db).forget(envelope.tenant, event.customer_id, tx.session)
    await _evaluate(tx, envelope.tenant, event.customer_id, None, utcnow())


SUBSCRIPTIONS = [
    Subscription(
        group_id="tagging.customer-facts",
        handlers={
            CustomerRegistered: updating(updates.registered),
            CustomerProfileChanged: on_profile_changed,
            LifecycleStageChanged: updating(updates.stage_changed),
            OwnerChanged: updating(updates.owner_changed),
            ConsentGranted: updating(updates.consent_changed),
            ConsentWithdrawn: updating(updates.consent_changed),
            PurchaseStatsChanged: updating(updates.stats_changed),
            BehaviourRecorded: on_behaviour,
            CustomersMerged: on_merged,
            CustomersUnmerged: on_unmerged,
            CustomerErased: on_erased,
        },
    )
]
