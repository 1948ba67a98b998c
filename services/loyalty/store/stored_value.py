"""Stored-value accounts (one document each, saved over the version read) and their
movements (append-only, unique per tenant by source)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.loyalty.domain.stored_value import StoredValueAccount, ValueEntry
from services.loyalty.store.versioned import VersionedStore

ACCOUNTS = "stored_value_accounts"
ENTRIES = "stored_value_entries"

INDEXES = [
    Index(ENTRIES, [("tenant", 1), ("source", 1)], unique=True, name="source"),
    Index(ENTRIES, [("tenant", 1), ("customer_id", 1), ("seq", -1)], name="by_customer"),
]


class StoredValueStore(VersionedStore[StoredValueAccount]):
    model = StoredValueAccount

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db[ACCOUNTS])
        self._entries = db[ENTRIES]

    async def get(
        self, tenant: str, customer_id: str, *, session: AsyncClientSession | None = None
    ) -> StoredValueAccount:
        found = await self.load(tenant, customer_id, session=session)
        return found or StoredValueAccount(customer_id=customer_id)

    async def put(
        self,
        tenant: str,
        account: StoredValueAccount,
        entry: ValueEntry,
        session: AsyncClientSession,
    ) -> StoredValueAccount:
        """Save the account and its movement together; a source posted already raises a
        duplicate key."""
        saved = await self.save(tenant, account.customer_id, account, session)
        doc = {"_id": entry.entry_id, "tenant": tenant, "seq": saved.version, **entry.model_dump()}
        await self._entries.insert_one(doc, session=session)
        return saved

    async def by_source(
        self, tenant: str, source: str, *, session: AsyncClientSession | None = None
    ) -> ValueEntry | None:
        doc = await self._entries.find_one({"tenant": tenant, "source": source}, session=session)
        return ValueEntry.model_validate(doc) if doc else None

    async def page(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[ValueEntry], str | None]:
        query: dict[str, Any] = {"tenant": tenant, "customer_id": customer_id}
        if page.after is not None:
            query["seq"] = {"$lt": int(page.after_value("seq"))}
        docs = await self._entries.find(query).sort("seq", -1).limit(page.limit + 1).to_list()
        items = [ValueEntry.model_validate(d) for d in docs[: page.limit]]
        return items, next_cursor(docs, page.limit, "seq")
