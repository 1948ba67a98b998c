"""Data subject rights use cases: export everything held about a customer, erase them.

Erasure is one transaction: the profile (and any duplicate merged into it: the same person)
loses every personal field and its claims, behaviour and follow-ups are deleted, orders and
statistics keep their figures under an id nothing links back, the change log keeps who
changed which field when but no values, merge records drop their before-images, and
`customer.erased.v1` tells every other service to forget them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from contracts.customer import CustomerErased
from servicekit.clock import utcnow
from servicekit.context import Actor
from servicekit.errors import NotFound
from servicekit.pagination import MAX_LIMIT, PageRequest, decode_cursor
from servicekit.unit_of_work import Tx, UnitOfWork
from services.customer.domain import data_rights as rights
from services.customer.domain.behaviour import BehaviourEvent
from services.customer.domain.change_log import ChangeLogEntry
from services.customer.domain.consent import Consent, ConsentChange
from services.customer.domain.customer import Customer, Status
from services.customer.domain.data_rights import ErasureReceipt
from services.customer.domain.follow_ups import FollowUp
from services.customer.domain.merge import MergeRecord
from services.customer.domain.orders import Order
from services.customer.domain.purchase_stats import PurchaseStats
from services.customer.store.behaviour import BEHAVIOUR, BehaviourStore
from services.customer.store.consents import ConsentStore
from services.customer.store.customers import CustomerRecords
from services.customer.store.follow_ups import FOLLOW_UPS, FollowUpStore
from services.customer.store.merges import MergeStore, RecordMover
from services.customer.store.orders import OrderStore, PurchaseStatsStore

T = TypeVar("T")


class ConsentRecord(BaseModel):
    current: Consent
    history: list[ConsentChange]


class CustomerExport(BaseModel):
    """Everything held about one customer, personal data in clear."""

    exported_at: datetime
    exported_by: str
    profile: Customer
    consents: list[ConsentRecord]
    behaviour: list[BehaviourEvent]
    orders: list[Order]
    purchase_stats: PurchaseStats | None
    follow_ups: list[FollowUp]
    change_log: list[ChangeLogEntry]
    merges: list[MergeRecord]


class DataRightsService:
    def __init__(
        self,
        uow: UnitOfWork,
        customers: CustomerRecords,
        merges: MergeStore,
        mover: RecordMover,
        db_stores: tuple[
            ConsentStore, BehaviourStore, OrderStore, PurchaseStatsStore, FollowUpStore
        ],
    ) -> None:
        self.uow = uow
        self.customers = customers
        self.merges = merges
        self.mover = mover
        self.consents, self.behaviour, self.orders, self.stats, self.follow_ups = db_stores

    # --- export --------------------------------------------------------------------------

    async def export(self, tenant: str, customer_id: str, *, actor: Actor) -> CustomerExport:
        rights.require_data_rights_role(actor, action="export")
        customer = await self._customer(tenant, customer_id)
        return CustomerExport(
            exported_at=utcnow(),
            exported_by=actor.id,
            profile=customer,
            consents=await self._consents(tenant, customer_id),
            behaviour=await _every(lambda p: self.behaviour.recent(tenant, customer_id, p)),
            orders=await _every(lambda p: self.orders.page_for_customer(tenant, customer_id, p)),
            purchase_stats=await self.stats.get(tenant, customer_id),
            follow_ups=await _every(
                lambda p: self.follow_ups.page_of_customer(tenant, customer_id, p)
            ),
            change_log=await self.customers.whole_change_log(tenant, customer_id),
            merges=await self.merges.of_customer(tenant, customer_id),
        )

    async def _consents(self, tenant: str, customer_id: str) -> list[ConsentRecord]:
        current = await self.consents.of_customer(tenant, customer_id)
        history = await self.consents.history(tenant, customer_id)
        return [
            ConsentRecord(current=consent, history=history.get(key, []))
            for key, consent in sorted(current.items())
        ]

    # --- erasure -------------------------------------------------------------------------

    async def erase(self, tenant: str, customer_id: str, *, actor: Actor) -> ErasureReceipt:
        """Erase the customer; erasing an erased customer answers the same receipt."""
        rights.require_data_rights_role(actor, action="erase")

        async def work(tx: Tx) -> ErasureReceipt:
            customer = await self._customer(tenant, customer_id, tx)
            if customer.status is Status.ERASED:
                return rights.receipt(customer)
            rights.check_erasable(customer)
            at = utcnow()
            people = [customer, *await self._merged_into(tx, customer)]
            for person in people:
                await self._erase_one(tx, person, actor, at)
            await self.merges.forget_images(tenant, [p.id for p in people], tx.session)
            await tx.emit(
                *(CustomerErased(customer_id=p.id, erased_at=at) for p in people), tenant=tenant
            )
            return rights.receipt(rights.erase(customer, at=at))

        return await self.uow.run(work)

    async def _merged_into(self, tx: Tx, customer: Customer) -> list[Customer]:
        """Every duplicate merged into the customer, directly or through another merge."""
        found: list[Customer] = []
        frontier = [customer.id]
        while frontier:
            level = []
            for survivor_id in frontier:
                level += await self.customers.merged_into(customer.tenant, survivor_id, tx.session)
            found += level
            frontier = [c.id for c in level]
        return found

    async def _erase_one(self, tx: Tx, customer: Customer, actor: Actor, at: datetime) -> None:
        tenant, s = customer.tenant, tx.session
        await self.customers.replace(customer, rights.erase(customer, at=at), s)
        await self.customers.release_all_claims(customer.id, s)
        await self.customers.scrub_change_log(tenant, customer.id, s)
        await self.customers.log_change(
            ChangeLogEntry(
                customer_id=customer.id,
                tenant=tenant,
                at=at,
                by=actor.id,
                reason="erased at the person's request",
                changes=rights.erasure_changes(customer),
            ),
            s,
        )
        await self.mover.delete_all(BEHAVIOUR, tenant, customer.id, s)
        await self.mover.delete_all(FOLLOW_UPS, tenant, customer.id, s)
        await self._detach_figures(tx, customer)

    async def _detach_figures(self, tx: Tx, customer: Customer) -> None:
        """Orders and statistics keep their amounts and counts (business totals) under an
        anonymous id; the personal free text of an order goes."""
        tenant, s = customer.tenant, tx.session
        anonymous = rights.anonymous_id()
        await self.mover.strip_orders(tenant, customer.id, anonymous, s)
        stats = await self.mover.stats(tenant, customer.id, s)
        if stats is not None:
            await self.mover.put_stats(tenant, anonymous, stats, s)
            await self.mover.put_stats(tenant, customer.id, None, s)

    async def _customer(self, tenant: str, customer_id: str, tx: Tx | None = None) -> Customer:
        found = await self.customers.get(tenant, customer_id, session=tx.session if tx else None)
        if found is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        return found


async def _every(
    fetch: Callable[[PageRequest], Awaitable[tuple[list[T], str | None]]],
) -> list[T]:
    """Every item of a paged listing, page by page."""
    items: list[T] = []
    page = PageRequest(limit=MAX_LIMIT)
    while True:
        batch, cursor = await fetch(page)
        items += batch
        if cursor is None:
            return items
        page = PageRequest(after=decode_cursor(cursor), limit=MAX_LIMIT)
