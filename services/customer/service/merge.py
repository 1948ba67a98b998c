"""Merge use cases: find duplicates, merge one into a survivor, undo a merge.

A merge and its undo are each one transaction over both customers, every record moved, the
merge record, the change log and the events. Both customers are saved over the version
read, so of two merges touching one customer one commits and the other, retried on the
changed state, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.customer import (
    ConsentGranted,
    ConsentWithdrawn,
    CustomersMerged,
    CustomersUnmerged,
)
from servicekit.clock import utcnow
from servicekit.context import Actor
from servicekit.errors import Conflict, NotFound
from servicekit.unit_of_work import Tx, UnitOfWork
from services.customer.domain import merge as rules
from services.customer.domain.change_log import ChangeLogEntry, diff
from services.customer.domain.consent import Consent
from services.customer.domain.customer import Customer
from services.customer.domain.merge import DuplicateReason, MergeRecord, MovedRecords
from services.customer.domain.purchase_stats import empty
from services.customer.store.consents import ConsentStore, StaleConsent
from services.customer.store.customers import CustomerRecords
from services.customer.store.merges import MergeStore, RecordMover


@dataclass(frozen=True)
class Duplicate:
    customer: Customer
    reasons: list[DuplicateReason]


class MergeService:
    def __init__(
        self,
        uow: UnitOfWork,
        customers: CustomerRecords,
        merges: MergeStore,
        mover: RecordMover,
        consents: ConsentStore,
        *,
        unmerge_window_days: int,
    ) -> None:
        self.uow = uow
        self.customers = customers
        self.merges = merges
        self.mover = mover
        self.consents = consents
        self.window_days = unmerge_window_days

    # --- reading -------------------------------------------------------------------------

    async def duplicates(self, tenant: str, customer_id: str) -> list[Duplicate]:
        customer = await self._customer(tenant, customer_id)
        found = [
            Duplicate(c, rules.duplicate_reasons(customer, c))
            for c in await self.customers.candidates(customer)
        ]
        return [d for d in found if d.reasons]

    async def get(self, tenant: str, merge_id: str) -> MergeRecord:
        record = await self.merges.get(tenant, merge_id)
        if record is None:
            raise NotFound(f"no merge {merge_id}", code="merge_not_found")
        return record

    async def of_customer(self, tenant: str, customer_id: str) -> list[MergeRecord]:
        await self._customer(tenant, customer_id)
        return await self.merges.of_customer(tenant, customer_id)

    # --- merge ---------------------------------------------------------------------------

    async def merge(
        self, tenant: str, survivor_id: str, merged_id: str, *, reason: str, actor: Actor
    ) -> MergeRecord:
        """Merge `merged_id` into `survivor_id`; publishes `customer.merged.v1`."""

        async def work(tx: Tx) -> MergeRecord:
            survivor = await self._customer(tenant, survivor_id, tx)
            merged = await self._customer(tenant, merged_id, tx)
            rules.check_mergeable(survivor, merged)
            at = utcnow()
            survivor_after, gains = rules.absorb(survivor, merged, at=at)
            await self._retire(tx, merged, survivor.id, at)
            await self.customers.replace(survivor, survivor_after, tx.session)
            record = MergeRecord(
                id=rules.new_merge_id(),
                tenant=tenant,
                survivor_id=survivor.id,
                merged_id=merged.id,
                reason=reason,
                merged_by=actor.id,
                merged_at=at,
                undo_until=rules.undo_until(at, self.window_days),
                gains=gains,
                survivor_before=survivor,
                merged_before=merged,
            )
            await self._move_in(tx, record, actor)
            await self.merges.add(record, tx.session)
            await self._log(tx, survivor, survivor_after, actor, f"merged {merged.id} in")
            marked = rules.mark_merged(merged, into=survivor.id, at=at)
            await self._log(tx, merged, marked, actor, f"merged into {survivor.id}")
            await tx.emit(_merged(record), tenant=tenant)
            return record

        return await self.uow.run(work)

    async def _retire(self, tx: Tx, merged: Customer, survivor_id: str, at: datetime) -> None:
        """The duplicate stops acting and lets go of its mobile and identities first, so
        the survivor can claim them in the same transaction."""
        marked = rules.mark_merged(merged, into=survivor_id, at=at)
        await self.customers.replace(merged, marked, tx.session)
        await self.customers.release_all_claims(merged.id, tx.session)

    async def _move_in(self, tx: Tx, record: MergeRecord, actor: Actor) -> None:
        tenant, s = record.tenant, tx.session
        source, target = record.merged_id, record.survivor_id
        moved = MovedRecords(
            behaviour=await self.mover.behaviour_ids(tenant, source, s),
            orders=await self.mover.order_ids(tenant, source, s),
            follow_ups=await self.mover.follow_up_ids(tenant, source, s),
        )
        await self.mover.move_behaviour(tenant, moved.behaviour, target, s)
        await self.mover.move_orders(tenant, moved.orders, target, s)
        await self.mover.move_follow_ups(tenant, moved.follow_ups, target, s)
        await self._merge_consents(tx, record, moved, actor)
        await self._merge_stats(tx, record)
        record.moved = moved

    async def _merge_consents(
        self, tx: Tx, record: MergeRecord, moved: MovedRecords, actor: Actor
    ) -> None:
        mine = await self.mover.consents(record.tenant, record.survivor_id, tx.session)
        theirs = await self.mover.consents(record.tenant, record.merged_id, tx.session)
        for consent in rules.consents_to_move(mine, theirs):
            await self.mover.move_consent(consent, record.survivor_id, tx.session)
            moved.consents.append(rules.consent_key(consent))
        overrides = rules.consent_overrides(mine, theirs, by=actor.id, at=record.merged_at)
        for consent in overrides:
            await self._save_consent(tx, consent)
            moved.consents_overridden.append(rules.consent_key(consent))
        changed = {rules.consent_key(c) for c in overrides}
        record.survivor_consents_before = [c for c in mine if rules.consent_key(c) in changed]

    async def _save_consent(self, tx: Tx, consent: Consent) -> None:
        try:
            await self.consents.save(consent, tx.session)
        except StaleConsent:
            raise Conflict(
                "a consent changed meanwhile; try again", code="consent_changed"
            ) from None
        await tx.emit(_consent_event(consent), tenant=consent.tenant)

    async def _merge_stats(self, tx: Tx, record: MergeRecord) -> None:
        tenant, s = record.tenant, tx.session
        record.survivor_stats_before = await self.mover.stats(tenant, record.survivor_id, s)
        record.merged_stats_before = await self.mover.stats(tenant, record.merged_id, s)
        combined = rules.combined_stats(
            record.survivor_stats_before,
            record.merged_stats_before,
            survivor_id=record.survivor_id,
            at=record.merged_at,
        )
        if combined is not None:
            await self.mover.put_stats(tenant, record.survivor_id, combined, s)
            await self.mover.put_stats(tenant, record.merged_id, None, s)

    # --- undo ----------------------------------------------------------------------------

    async def undo(self, tenant: str, merge_id: str, *, actor: Actor) -> MergeRecord:
        """Undo a merge within the window; publishes `customer.unmerged.v1`."""

        async def work(tx: Tx) -> MergeRecord:
            record = await self.merges.get(tenant, merge_id, session=tx.session)
            if record is None:
                raise NotFound(f"no merge {merge_id}", code="merge_not_found")
            survivor = await self._customer(tenant, record.survivor_id, tx)
            merged = await self._customer(tenant, record.merged_id, tx)
            at = utcnow()
            rules.check_undoable(record, survivor, now=at)
            assert record.merged_before is not None  # checked: not erased
            survivor_after = rules.separate(survivor, record.gains, at=at)
            merged_after = rules.restored(record.merged_before, merged, at=at)
            await self.customers.replace(survivor, survivor_after, tx.session)
            await self.customers.replace(merged, merged_after, tx.session)
            await self.customers.claim(merged_after, tx.session)
            await self._move_out(tx, record)
            done = record.model_copy(
                update={"status": rules.MergeStatus.UNDONE, "undone_at": at, "undone_by": actor.id}
            )
            if not await self.merges.mark_undone(done, tx.session):
                raise Conflict("this merge was undone already", code="merge_undone")
            await self._log(tx, survivor, survivor_after, actor, f"unmerged {merged.id}")
            await self._log(tx, merged, merged_after, actor, f"unmerged from {survivor.id}")
            await tx.emit(_unmerged(done), tenant=tenant)
            return done

        return await self.uow.run(work)

    async def _move_out(self, tx: Tx, record: MergeRecord) -> None:
        tenant, s, back = record.tenant, tx.session, record.merged_id
        await self.mover.move_behaviour(tenant, record.moved.behaviour, back, s)
        await self.mover.move_orders(tenant, record.moved.orders, back, s)
        await self.mover.move_follow_ups(tenant, record.moved.follow_ups, back, s)
        await self._unmerge_consents(tx, record)
        await self._recount_stats(tx, record)

    async def _unmerge_consents(self, tx: Tx, record: MergeRecord) -> None:
        current = {
            rules.consent_key(c): c
            for c in await self.mover.consents(record.tenant, record.survivor_id, tx.session)
        }
        for key in record.moved.consents:
            if key in current:
                await self.mover.move_consent(current[key], record.merged_id, tx.session)
        for before in record.survivor_consents_before:
            now = current.get(rules.consent_key(before))
            # Only the merge's own change is taken back: a decision recorded since stands.
            if now is not None and now.version == before.version + 1:
                await self.mover.put_consent(before, tx.session)
                await tx.emit(_consent_event(before), tenant=record.tenant)

    async def _recount_stats(self, tx: Tx, record: MergeRecord) -> None:
        tenant, s, at = record.tenant, tx.session, utcnow()
        for customer_id, before in (
            (record.survivor_id, await self.mover.stats(tenant, record.survivor_id, s)),
            (record.merged_id, record.merged_stats_before),
        ):
            orders = await self.mover.orders_of(tenant, customer_id, s)
            base = before or empty(customer_id)
            recounted = rules.stats_from_orders(base, orders, at=at)
            await self.mover.put_stats(tenant, customer_id, recounted, s)

    # --- helpers -------------------------------------------------------------------------

    async def _customer(self, tenant: str, customer_id: str, tx: Tx | None = None) -> Customer:
        session = tx.session if tx else None
        customer = await self.customers.get(tenant, customer_id, session=session)
        if customer is None:
            # Another tenant's customer is as unknown here as one that never existed.
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        return customer

    async def _log(
        self, tx: Tx, before: Customer, after: Customer, actor: Actor, reason: str
    ) -> None:
        entry = ChangeLogEntry(
            customer_id=before.id,
            tenant=before.tenant,
            at=utcnow(),
            by=actor.id,
            reason=reason,
            changes=diff(before, after),
        )
        await self.customers.log_change(entry, tx.session)


def _merged(record: MergeRecord) -> CustomersMerged:
    return CustomersMerged(
        merge_id=record.id,
        survivor_id=record.survivor_id,
        merged_id=record.merged_id,
        merged_by=record.merged_by,
        merged_at=record.merged_at,
    )


def _unmerged(record: MergeRecord) -> CustomersUnmerged:
    assert record.undone_at is not None and record.undone_by is not None
    return CustomersUnmerged(
        merge_id=record.id,
        survivor_id=record.survivor_id,
        restored_id=record.merged_id,
        unmerged_by=record.undone_by,
        unmerged_at=record.undone_at,
    )


def _consent_event(consent: Consent) -> ConsentGranted | ConsentWithdrawn:
    common = {
        "customer_id": consent.customer_id,
        "channel": str(consent.channel),
        "purpose": str(consent.purpose),
        "source": consent.source,
    }
    if consent.allowed:
        return ConsentGranted(**common, granted_at=consent.changed_at)
    return ConsentWithdrawn(**common, withdrawn_at=consent.changed_at)
