"""Tags on customers at rest: current assignments (`tag_assignments`, one document per
customer and tag) and the history of every assign and remove (`tag_history`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.tagging.domain.tags import Assignment
from services.tagging.store.profiles import PROFILES

ASSIGNMENTS = "tag_assignments"
HISTORY = "tag_history"
INDEXES = [
    Index(ASSIGNMENTS, [("tenant", 1), ("customer_id", 1), ("tag_id", 1)], unique=True),
    Index(ASSIGNMENTS, [("tenant", 1), ("tag_id", 1), ("customer_id", 1)], name="by_tag"),
    Index(
        ASSIGNMENTS,
        [("expires_at", 1)],
        partial={"expires_at": {"$type": "date"}},
        name="expiring",
    ),
    Index(HISTORY, [("tenant", 1), ("customer_id", 1), ("at", -1)], name="by_customer"),
]
Session = AsyncClientSession | None


def _key(tenant: str, customer_id: str, tag_id: str) -> str:
    # The natural key as `_id`: two concurrent first assigns collide on it and one retries.
    return f"{tenant}:{customer_id}:{tag_id}"


def _doc(a: Assignment) -> Document:
    return {"_id": _key(a.tenant, a.customer_id, a.tag_id), **a.model_dump()}


def _assignment(doc: Document) -> Assignment:
    return Assignment.model_validate(doc)


class AssignmentStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._assignments = db[ASSIGNMENTS]
        self._history = db[HISTORY]
        self._profiles = db[PROFILES]

    async def of_customer(
        self, tenant: str, customer_id: str, *, session: Session = None
    ) -> list[Assignment]:
        """Every assignment, including expired ones the sweep has not removed yet."""
        query = {"tenant": tenant, "customer_id": customer_id}
        docs = await self._assignments.find(query, session=session).sort("tag_id", 1).to_list()
        return [_assignment(d) for d in docs]

    async def of_customers(
        self, tenant: str, customer_ids: list[str], *, session: Session = None
    ) -> dict[str, list[Assignment]]:
        """Every assignment of each customer (an empty list for one without tags)."""
        query = {"tenant": tenant, "customer_id": {"$in": customer_ids}}
        found: dict[str, list[Assignment]] = {c: [] for c in customer_ids}
        async for doc in self._assignments.find(query, session=session):
            found.setdefault(doc["customer_id"], []).append(_assignment(doc))
        return found

    async def get(
        self, tenant: str, customer_id: str, tag_id: str, *, session: Session = None
    ) -> Assignment | None:
        key = _key(tenant, customer_id, tag_id)
        doc = await self._assignments.find_one({"_id": key}, session=session)
        return _assignment(doc) if doc else None

    async def of_tag(
        self, tenant: str, tag_id: str, customer_ids: list[str], *, session: Session = None
    ) -> dict[str, Assignment]:
        keys = [_key(tenant, c, tag_id) for c in customer_ids]
        docs = await self._assignments.find({"_id": {"$in": keys}}, session=session).to_list()
        return {d["customer_id"]: _assignment(d) for d in docs}

    async def put(self, assignment: Assignment, session: AsyncClientSession) -> None:
        doc = _doc(assignment)
        await self._assignments.replace_one({"_id": doc["_id"]}, doc, upsert=True, session=session)

    async def put_many(self, assignments: list[Assignment], session: AsyncClientSession) -> None:
        if assignments:
            ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in map(_doc, assignments)]
            await self._assignments.bulk_write(ops, ordered=False, session=session)

    async def delete(
        self, tenant: str, customer_id: str, tag_id: str, session: AsyncClientSession
    ) -> bool:
        key = _key(tenant, customer_id, tag_id)
        outcome = await self._assignments.delete_one({"_id": key}, session=session)
        return outcome.deleted_count == 1

    async def delete_many(
        self, tenant: str, tag_id: str, customer_ids: list[str], session: AsyncClientSession
    ) -> None:
        keys = [_key(tenant, c, tag_id) for c in customer_ids]
        await self._assignments.delete_many({"_id": {"$in": keys}}, session=session)

    async def claim_expired(
        self, assignment: Assignment, now: datetime, session: AsyncClientSession
    ) -> bool:
        """Delete it if it is still expired; False when another sweeper (or a renewal) came
        first. Inside the caller's transaction, so the claim and the event commit together."""
        key = _key(assignment.tenant, assignment.customer_id, assignment.tag_id)
        query = {"_id": key, "expires_at": {"$lte": now}}
        outcome = await self._assignments.delete_one(query, session=session)
        return outcome.deleted_count == 1

    async def expired(self, now: datetime, limit: int) -> list[Assignment]:
        query = {"expires_at": {"$type": "date", "$lte": now}}
        docs = await self._assignments.find(query).sort("expires_at", 1).limit(limit).to_list()
        return [_assignment(d) for d in docs]

    async def customers_with(
        self, tenant: str, tag_id: str, page: PageRequest, now: datetime
    ) -> tuple[list[Assignment], str | None]:
        """The tag's current (unexpired) assignments in customer id order."""
        query: Document = {
            "tenant": tenant,
            "tag_id": tag_id,
            "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}],
        }
        if page.after:
            query["customer_id"] = {"$gt": str(page.after_value("customer_id"))}
        cursor = self._assignments.find(query).sort("customer_id", 1).limit(page.limit + 1)
        docs = await cursor.to_list()
        return [_assignment(d) for d in docs[: page.limit]], next_cursor(
            docs, page.limit, "customer_id"
        )

    async def in_use(self, tenant: str, tag_id: str) -> bool:
        return await self._assignments.find_one({"tenant": tenant, "tag_id": tag_id}) is not None

    async def record(self, entries: list[dict[str, Any]], session: AsyncClientSession) -> None:
        """Append to the history of assigns and removes."""
        if entries:
            await self._history.insert_many(entries, session=session)

    async def history(self, tenant: str, customer_id: str) -> list[Document]:
        query = {"tenant": tenant, "customer_id": customer_id}
        return await self._history.find(query, {"_id": 0}).sort("at", 1).to_list()

    async def known_customers(
        self, tenant: str, customer_ids: list[str], *, session: Session = None
    ) -> set[str]:
        """Which of these customers tagging's read model knows (active ones only)."""
        query = {"_id": {"$in": customer_ids}, "tenant": tenant, "active": {"$ne": False}}
        docs = await self._profiles.find(query, {"_id": 1}, session=session).to_list()
        return {d["_id"] for d in docs}
