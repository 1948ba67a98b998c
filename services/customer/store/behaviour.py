"""Behaviour events at rest: one document per event, unique per tenant by behaviour id
(it is the document's `_id`), deleted by a TTL index once older than the retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.customer.domain.behaviour import RETENTION, BehaviourEvent, BehaviourKind
from services.customer.store import newest_first
from services.customer.store.customers import CUSTOMERS

BEHAVIOUR = "behaviour_events"
TTL_INDEX = "retention_ttl"


def behaviour_indexes(retention: timedelta = RETENTION) -> list[Index]:
    """The indexes, for a given retention. MongoDB refuses to recreate an index with other
    options: to change the retention of an existing deployment, `collMod` the TTL index.

    No index for the behaviour id: `_id` is the (tenant, behaviour id) pair, unique by
    construction. Each secondary index costs the embedded store about a quarter of its
    insert rate, and behaviour is the highest-volume write of the service."""
    return [
        Index(
            BEHAVIOUR,
            [("tenant", 1), ("customer_id", 1), ("occurred_at", -1), ("_id", -1)],
            name="recent_by_customer",
        ),
        # TTL indexes are single-field: one clock for every tenant's events.
        Index(
            BEHAVIOUR,
            [("occurred_at", 1)],
            expire_after_seconds=int(retention.total_seconds()),
            name=TTL_INDEX,
        ),
    ]


def document_id(tenant: str, behaviour_id: str) -> str:
    # A tenant id has no ':', so the pair reads back unambiguously.
    return f"{tenant}:{behaviour_id}"


INDEXES = behaviour_indexes()


class BehaviourStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._events = db[BEHAVIOUR]
        self._customers = db[CUSTOMERS]

    async def add_many(
        self, tenant: str, events: list[BehaviourEvent], session: AsyncClientSession
    ) -> None:
        """One insert_many: the embedded store writes ~15x more documents per second in
        batches than one by one. A behaviour id stored meanwhile raises a duplicate key."""
        if events:
            docs = [
                {"_id": document_id(tenant, e.behaviour_id), "tenant": tenant, **e.model_dump()}
                for e in events
            ]
            await self._events.insert_many(docs, session=session)

    async def seen_ids(
        self, tenant: str, behaviour_ids: list[str], session: AsyncClientSession
    ) -> set[str]:
        """Which of these behaviour ids are stored already."""
        if not behaviour_ids:
            return set()
        ids = [document_id(tenant, b) for b in behaviour_ids]
        cursor = self._events.find({"_id": {"$in": ids}}, {"behaviour_id": 1}, session=session)
        return {doc["behaviour_id"] async for doc in cursor}

    async def customer_statuses(
        self, tenant: str, customer_ids: list[str], session: AsyncClientSession
    ) -> dict[str, str]:
        """Status (active, merged, erased) of those of these customers that exist: one read
        for a whole batch, where a profile lookup each would cost more than the insert."""
        cursor = self._customers.find(
            {"tenant": tenant, "_id": {"$in": customer_ids}}, {"status": 1}, session=session
        )
        return {doc["_id"]: doc.get("status", "active") async for doc in cursor}

    async def recent(
        self,
        tenant: str,
        customer_id: str,
        page: PageRequest,
        *,
        kind: BehaviourKind | None = None,
        since: datetime | None = None,
    ) -> tuple[list[BehaviourEvent], str | None]:
        """Newest first; the cursor is the (occurred_at, _id) of the last one."""
        query: Document = {"tenant": tenant, "customer_id": customer_id}
        if kind is not None:
            query["kind"] = str(kind)
        if since is not None:
            query["occurred_at"] = {"$gte": since}
        query = newest_first.after(query, page, "occurred_at", "_id")
        order = newest_first.sort_keys("occurred_at", "_id")
        docs = await self._events.find(query).sort(order).limit(page.limit + 1).to_list()
        events = [BehaviourEvent.model_validate(d) for d in docs[: page.limit]]
        return events, next_cursor(docs, page.limit, "occurred_at", "_id")
