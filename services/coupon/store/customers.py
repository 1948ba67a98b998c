"""The coupon service's read model of customers' paid orders (from `customer.order_paid.v1`),
so new-versus-returning is judged at claim time without asking the customer service."""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index

CUSTOMER_ORDERS = "customer_orders"
INDEXES: list[Index] = []  # keyed by _id = tenant:customer


def _key(tenant: str, customer_id: str) -> str:
    return f"{tenant}:{customer_id}"


class CustomerOrdersStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.orders = db[CUSTOMER_ORDERS]

    async def count_paid(
        self, tenant: str, customer_id: str, order_id: str, session: AsyncClientSession
    ) -> None:
        """Count one paid order (the consumer's event receipt makes this once per event)."""
        await self.orders.update_one(
            {"_id": _key(tenant, customer_id)},
            {"$inc": {"paid_orders": 1}, "$set": {"last_order_id": order_id}},
            upsert=True,
            session=session,
        )

    async def paid_orders(
        self, tenant: str, customers: list[str], session: AsyncClientSession | None = None
    ) -> dict[str, int]:
        keys = [_key(tenant, c) for c in customers]
        docs = await self.orders.find({"_id": {"$in": keys}}, session=session).to_list()
        counts = {d["_id"].split(":", 1)[1]: int(d.get("paid_orders", 0)) for d in docs}
        return {c: counts.get(c, 0) for c in customers}

    async def move_paid(
        self,
        tenant: str,
        from_id: str,
        to_id: str,
        session: AsyncClientSession,
        *,
        count: int | None = None,
    ) -> int:
        """Move `count` paid orders (all of them when None) from one customer to another;
        returns how many moved."""
        held = (await self.paid_orders(tenant, [from_id], session))[from_id]
        count = held if count is None else min(count, held)
        if count:
            for customer, delta in ((from_id, -count), (to_id, count)):
                await self.orders.update_one(
                    {"_id": _key(tenant, customer)},
                    {"$inc": {"paid_orders": delta}},
                    upsert=True,
                    session=session,
                )
        return count
