"""Customer 360: one read of everything an operator looks at first, each part from its store."""

from __future__ import annotations

from pydantic import BaseModel

from servicekit.clock import utcnow
from servicekit.errors import NotFound
from servicekit.pagination import MAX_LIMIT, PageRequest
from services.customer.domain.behaviour import BehaviourEvent
from services.customer.domain.change_log import ChangeLogEntry
from services.customer.domain.consent import Consent
from services.customer.domain.customer import Customer
from services.customer.domain.follow_ups import OPEN_STATES, FollowUp
from services.customer.domain.orders import Order
from services.customer.domain.purchase_stats import PurchaseSummary, summarize
from services.customer.store.behaviour import BehaviourStore
from services.customer.store.consents import ConsentStore
from services.customer.store.customers import CustomerStore
from services.customer.store.follow_ups import FollowUpStore
from services.customer.store.orders import OrderStore, PurchaseStatsStore

RECENT_BEHAVIOUR = 20
RECENT_ORDERS = 10
RECENT_CHANGES = 10


class Overview(BaseModel):
    customer: Customer
    consents: list[Consent]
    purchase_stats: PurchaseSummary | None
    recent_behaviour: list[BehaviourEvent]
    recent_orders: list[Order]
    open_reminders: list[FollowUp]
    recent_changes: list[ChangeLogEntry]


class OverviewService:
    def __init__(
        self,
        customers: CustomerStore,
        consents: ConsentStore,
        behaviour: BehaviourStore,
        orders: OrderStore,
        stats: PurchaseStatsStore,
        follow_ups: FollowUpStore,
    ) -> None:
        self.customers = customers
        self.consents = consents
        self.behaviour = behaviour
        self.orders = orders
        self.stats = stats
        self.follow_ups = follow_ups

    async def overview(self, tenant: str, customer_id: str) -> Overview:
        customer = await self.customers.get(tenant, customer_id)
        if customer is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        consents = await self.consents.of_customer(tenant, customer_id)
        stats = await self.stats.get(tenant, customer_id)
        behaviour, _ = await self.behaviour.recent(
            tenant, customer_id, PageRequest(limit=RECENT_BEHAVIOUR)
        )
        orders, _ = await self.orders.page_for_customer(
            tenant, customer_id, PageRequest(limit=RECENT_ORDERS)
        )
        changes, _ = await self.customers.change_log(
            tenant, customer_id, PageRequest(limit=RECENT_CHANGES)
        )
        return Overview(
            customer=customer,
            consents=[consents[k] for k in sorted(consents)],
            purchase_stats=summarize(stats, now=utcnow()) if stats else None,
            recent_behaviour=behaviour,
            recent_orders=orders,
            open_reminders=await self._open_reminders(tenant, customer_id),
            recent_changes=changes,
        )

    async def _open_reminders(self, tenant: str, customer_id: str) -> list[FollowUp]:
        """Reminders still asking something of an advisor, among the customer's latest
        follow-ups (the follow-up store lists open reminders by advisor, not by customer)."""
        latest, _ = await self.follow_ups.page_of_customer(
            tenant, customer_id, PageRequest(limit=MAX_LIMIT)
        )
        open_ = [f for f in latest if f.reminder and f.reminder.state in OPEN_STATES]
        return sorted(open_, key=lambda f: f.reminder.remind_at if f.reminder else utcnow())
