"""Orders and purchase statistics at rest.

An order is one document (its lines and refunds inside: both bounded), unique per tenant
by order id, saved only if its version is still the one read. A customer's statistics are
one document, saved the same way, in the same transaction as the order that moved them."""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.customer.domain.orders import Order, OrderStatus
from services.customer.domain.purchase_stats import PurchaseSpan, PurchaseStats
from services.customer.store import newest_first
from services.customer.store.races import WriteRaced

ORDERS = "orders"
PURCHASE_STATS = "purchase_stats"

INDEXES = [
    Index(ORDERS, [("tenant", 1), ("order_id", 1)], unique=True, name="order_id"),
    Index(
        ORDERS,
        [("tenant", 1), ("customer_id", 1), ("occurred_at", -1), ("order_id", -1)],
        name="recent_by_customer",
    ),
    Index(PURCHASE_STATS, [("tenant", 1), ("customer_id", 1)], unique=True, name="customer"),
]


class OrderStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._orders = db[ORDERS]

    async def get(
        self, tenant: str, order_id: str, *, session: AsyncClientSession | None = None
    ) -> Order | None:
        doc = await self._orders.find_one({"tenant": tenant, "order_id": order_id}, session=session)
        return Order.model_validate(doc) if doc else None

    async def add(self, tenant: str, order: Order, session: AsyncClientSession) -> None:
        """A concurrent report of the same order makes this raise a duplicate key."""
        await self._orders.insert_one(_to_doc(tenant, order), session=session)

    async def replace(self, tenant: str, order: Order, session: AsyncClientSession) -> Order:
        """Save `order` over the version it was read at; one version later on success."""
        saved = order.model_copy(update={"version": order.version + 1})
        result = await self._orders.replace_one(
            {"tenant": tenant, "order_id": order.order_id, "version": order.version},
            _to_doc(tenant, saved),
            session=session,
        )
        if result.matched_count != 1:
            raise WriteRaced(f"order {order.order_id} changed meanwhile")
        return saved

    async def purchase_span(
        self, tenant: str, customer_id: str, session: AsyncClientSession
    ) -> PurchaseSpan:
        """First and last payment among the customer's orders still counted."""
        query = {
            "tenant": tenant,
            "customer_id": customer_id,
            "status": {"$ne": str(OrderStatus.CANCELLED)},
        }
        first = await self._orders.find_one(
            query, {"paid_at": 1}, sort=[("paid_at", 1)], session=session
        )
        last = await self._orders.find_one(
            query, {"paid_at": 1}, sort=[("paid_at", -1)], session=session
        )
        return PurchaseSpan(first and first["paid_at"], last and last["paid_at"])

    async def page_for_customer(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[Order], str | None]:
        """Newest first; the cursor is the (occurred_at, order_id) of the last one."""
        query: Document = {"tenant": tenant, "customer_id": customer_id}
        query = newest_first.after(query, page, "occurred_at", "order_id")
        order = newest_first.sort_keys("occurred_at", "order_id")
        docs = await self._orders.find(query).sort(order).limit(page.limit + 1).to_list()
        orders = [Order.model_validate(d) for d in docs[: page.limit]]
        return orders, next_cursor(docs, page.limit, "occurred_at", "order_id")


class PurchaseStatsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._stats = db[PURCHASE_STATS]

    async def get(
        self, tenant: str, customer_id: str, *, session: AsyncClientSession | None = None
    ) -> PurchaseStats | None:
        doc = await self._stats.find_one(
            {"tenant": tenant, "customer_id": customer_id}, session=session
        )
        return PurchaseStats.model_validate(doc) if doc else None

    async def save(
        self, tenant: str, stats: PurchaseStats, session: AsyncClientSession
    ) -> PurchaseStats:
        """Insert the first version, or replace the version `stats` was read at; a writer
        that got there first makes this raise (duplicate key or WriteRaced)."""
        saved = stats.model_copy(update={"version": stats.version + 1})
        doc = {"tenant": tenant, **saved.model_dump()}
        if stats.version == 0:
            await self._stats.insert_one(doc, session=session)
            return saved
        result = await self._stats.replace_one(
            {"tenant": tenant, "customer_id": stats.customer_id, "version": stats.version},
            doc,
            session=session,
        )
        if result.matched_count != 1:
            raise WriteRaced(f"purchase stats of {stats.customer_id} changed meanwhile")
        return saved


def _to_doc(tenant: str, order: Order) -> Document:
    # `occurred_at` is derived, stored only to sort a customer's orders by it.
    return {"tenant": tenant, **order.model_dump(mode="python"), "occurred_at": order.occurred_at}
