"""Live segment membership: one document per customer listing the segments they are in and
since when. A customer in no segment has no document.

One document per customer (not per customer and segment) is what makes membership changes
safe under concurrency: the live evaluation of an event and a build's confirmation of the same
customer both read and write this one document in their transactions, so the store's write
conflict makes one of them retry on fresh facts instead of both committing stale answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import DeleteOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index

MEMBERSHIPS = "segment_memberships"
INDEXES = [
    Index(MEMBERSHIPS, [("tenant", 1), ("segments", 1), ("customer_id", 1)], name="members"),
]
Session = AsyncClientSession | None


def _id(tenant: str, customer_id: str) -> str:
    return f"{tenant}:{customer_id}"


@dataclass
class Membership:
    """The segments one customer is in, each with the time they joined it."""

    customer_id: str
    since: dict[str, datetime] = field(default_factory=dict)

    @property
    def segments(self) -> set[str]:
        return set(self.since)


@dataclass(frozen=True)
class Member:
    customer_id: str
    joined_at: datetime


class MembershipStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._memberships = db[MEMBERSHIPS]

    async def of_customers(
        self, tenant: str, customer_ids: Iterable[str], *, session: Session = None
    ) -> dict[str, Membership]:
        ids = [_id(tenant, c) for c in customer_ids]
        cursor = self._memberships.find({"_id": {"$in": ids}}, session=session)
        found = {doc["customer_id"]: _membership(doc) for doc in await cursor.to_list()}
        return {c: found.get(c) or Membership(c) for c in customer_ids}

    async def save_many(
        self, tenant: str, memberships: Iterable[Membership], session: AsyncClientSession
    ) -> None:
        """Write each customer's memberships as they now are (none: the document goes)."""
        writes: list[Any] = []
        for m in memberships:
            key = _id(tenant, m.customer_id)
            if not m.since:
                writes.append(DeleteOne({"_id": key}))
                continue
            doc = {
                "_id": key,
                "tenant": tenant,
                "customer_id": m.customer_id,
                "segments": sorted(m.since),
                "since": [{"segment_id": s, "at": at} for s, at in sorted(m.since.items())],
            }
            writes.append(ReplaceOne({"_id": key}, doc, upsert=True))
        if writes:
            await self._memberships.bulk_write(writes, ordered=False, session=session)

    async def members(
        self, tenant: str, segment_id: str, *, after: str | None, limit: int
    ) -> list[Member]:
        """Members of the segment in customer id order, after `after`."""
        query: Document = {"tenant": tenant, "segments": segment_id}
        if after is not None:
            query["customer_id"] = {"$gt": after}
        cursor = self._memberships.find(query).sort("customer_id", 1).limit(limit)
        return [_member(doc, segment_id) for doc in await cursor.to_list()]

    async def member_ids(
        self, tenant: str, segment_id: str, *, after: str | None, limit: int
    ) -> list[str]:
        query: Document = {"tenant": tenant, "segments": segment_id}
        if after is not None:
            query["customer_id"] = {"$gt": after}
        cursor = self._memberships.find(query, {"customer_id": 1, "_id": 0})
        docs = await cursor.sort("customer_id", 1).limit(limit).to_list()
        return [doc["customer_id"] for doc in docs]

    async def count(self, tenant: str, segment_id: str) -> int:
        return await self._memberships.count_documents({"tenant": tenant, "segments": segment_id})

    async def drop_segment(self, tenant: str, segment_id: str) -> None:
        """Forget a deleted segment's members; documents left empty stay until the customer's
        next evaluation rewrites them (an empty list matches no member query)."""
        await self._memberships.update_many(
            {"tenant": tenant, "segments": segment_id},
            {"$pull": {"segments": segment_id, "since": {"segment_id": segment_id}}},
        )


def _membership(doc: Document) -> Membership:
    since = {entry["segment_id"]: entry["at"] for entry in doc.get("since", [])}
    return Membership(doc["customer_id"], since)


def _member(doc: Document, segment_id: str) -> Member:
    joined = next(e["at"] for e in doc["since"] if e["segment_id"] == segment_id)
    return Member(doc["customer_id"], joined)
