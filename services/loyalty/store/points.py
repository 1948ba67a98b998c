"""Point accounts, their ledger entries, and what each order earned, at rest.

An account is one document (its open lots inside: bounded by the earnings not yet spent or
expired), saved over the version read. Entries are append-only, unique per tenant by
`source`: the same order, refund or request can never post twice. `next_due_at` lets the
maturing sweep find accounts with a release, expiry or reminder due."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.loyalty.domain.ledger import Entry, PointAccount
from services.loyalty.domain.orders import OrderEarning
from services.loyalty.store.versioned import VersionedStore

ACCOUNTS = "point_accounts"
ENTRIES = "point_entries"
ORDER_EARNINGS = "order_earnings"

INDEXES = [
    Index(ACCOUNTS, [("next_due_at", 1)], name="due"),
    Index(ENTRIES, [("tenant", 1), ("source", 1)], unique=True, name="source"),
    Index(ENTRIES, [("tenant", 1), ("customer_id", 1), ("seq", -1)], name="by_customer"),
    Index(ORDER_EARNINGS, [("tenant", 1), ("order_id", 1)], unique=True, name="order"),
]


class AccountStore(VersionedStore[PointAccount]):
    model = PointAccount

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db[ACCOUNTS])

    async def get(
        self, tenant: str, customer_id: str, *, session: AsyncClientSession | None = None
    ) -> PointAccount:
        found = await self.load(tenant, customer_id, session=session)
        return found or PointAccount(customer_id=customer_id)

    async def put(
        self,
        tenant: str,
        account: PointAccount,
        session: AsyncClientSession,
        *,
        next_due_at: datetime | None,
    ) -> PointAccount:
        return await self.save(
            tenant, account.customer_id, account, session, next_due_at=next_due_at
        )

    async def due(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant, customer id) of accounts with something due by `now`."""
        cursor = self._docs.find({"next_due_at": {"$lte": now}}, {"tenant": 1, "customer_id": 1})
        return [(d["tenant"], d["customer_id"]) for d in await cursor.limit(limit).to_list()]


class EntryStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._entries = db[ENTRIES]

    async def add(self, tenant: str, entries: list[Entry], session: AsyncClientSession) -> None:
        """A source posted already makes this raise a duplicate key."""
        if entries:
            base = _seq()
            docs = [_entry_doc(tenant, e, base + i) for i, e in enumerate(entries)]
            await self._entries.insert_many(docs, session=session)

    async def by_source(
        self, tenant: str, source: str, *, session: AsyncClientSession | None = None
    ) -> Entry | None:
        doc = await self._entries.find_one({"tenant": tenant, "source": source}, session=session)
        return Entry.model_validate(doc) if doc else None

    async def page(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[Entry], str | None]:
        """Newest first; the cursor is the sequence number of the last one."""
        query: dict[str, Any] = {"tenant": tenant, "customer_id": customer_id}
        if page.after is not None:
            query["seq"] = {"$lt": int(page.after_value("seq"))}
        found = self._entries.find(query).sort("seq", -1).limit(page.limit + 1)
        docs = await found.to_list()
        return [Entry.model_validate(d) for d in docs[: page.limit]], next_cursor(
            docs, page.limit, "seq"
        )

    async def all_for(self, tenant: str, customer_id: str) -> list[Entry]:
        cursor = self._entries.find({"tenant": tenant, "customer_id": customer_id}).sort("seq", 1)
        return [Entry.model_validate(d) for d in await cursor.to_list()]


class OrderEarningStore(VersionedStore[OrderEarning]):
    model = OrderEarning

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db[ORDER_EARNINGS])

    async def put(self, tenant: str, earning: OrderEarning, session: AsyncClientSession) -> None:
        await self.save(tenant, earning.order_id, earning, session, order_id=earning.order_id)


def _seq() -> int:
    """A sort key in order of posting: microseconds, times 100 for entries of one post."""
    import time

    return time.time_ns() // 1000 * 100


def _entry_doc(tenant: str, entry: Entry, seq: int) -> Document:
    return {"_id": entry.entry_id, "tenant": tenant, "seq": seq, **entry.model_dump(mode="python")}
