"""Re-keying a customer's documents when the customer service merges two customers: every
service that keeps documents by `customer_id` moves the duplicate's to the survivor, and
records which it moved so an unmerge moves back exactly those."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index

#: Ids (`_id`) of the documents moved, by collection.
Moved = dict[str, list[str]]


async def rekey(
    db: AsyncDatabase[Document],
    collections: Iterable[str],
    tenant: str,
    from_id: str,
    to_id: str,
    session: AsyncClientSession,
    *,
    versioned: bool = False,
) -> Moved:
    """Every document of `from_id` in `collections` now belongs to `to_id`. `versioned`
    documents (guarded by a `version` field) get theirs bumped, so a write that read them
    before the move fails its guard."""
    moved: Moved = {}
    for name in collections:
        query = {"tenant": tenant, "customer_id": from_id}
        ids = [d["_id"] for d in await db[name].find(query, {"_id": 1}, session=session).to_list()]
        await _assign(db, name, ids, to_id, session, versioned)
        moved[name] = ids
    return moved


async def rekey_back(
    db: AsyncDatabase[Document],
    moved: Moved,
    to_id: str,
    session: AsyncClientSession,
    *,
    versioned: bool = False,
) -> None:
    """The documents a merge moved belong to `to_id` (the restored customer) again."""
    for name, ids in moved.items():
        await _assign(db, name, ids, to_id, session, versioned)


async def _assign(
    db: AsyncDatabase[Document],
    name: str,
    ids: list[str],
    to_id: str,
    session: AsyncClientSession,
    versioned: bool,
) -> None:
    if ids:
        change: Document = {"$set": {"customer_id": to_id}}
        if versioned:
            change["$inc"] = {"version": 1}
        await db[name].update_many({"_id": {"$in": ids}}, change, session=session)


class MergeRecord(BaseModel):
    """A merge a service followed; services extend it with what they moved."""

    merge_id: str
    survivor_id: str
    merged_id: str
    unmerged: bool = False


R = TypeVar("R", bound=MergeRecord)


def merge_book_indexes(collection: str) -> list[Index]:
    return [Index(collection, [("tenant", 1), ("merged_id", 1)], name="by_merged")]


class MergeBook(Generic[R]):
    """The merges a service followed, one document each, keyed by tenant and merge id."""

    def __init__(self, db: AsyncDatabase[Document], collection: str, record: type[R]) -> None:
        self._merges = db[collection]
        self._record = record

    async def get(self, tenant: str, merge_id: str, session: AsyncClientSession) -> R | None:
        doc = await self._merges.find_one({"_id": f"{tenant}:{merge_id}"}, session=session)
        return self._record.model_validate(doc) if doc else None

    async def put(self, tenant: str, record: R, session: AsyncClientSession) -> None:
        doc = {"_id": f"{tenant}:{record.merge_id}", "tenant": tenant, **record.model_dump()}
        await self._merges.replace_one({"_id": doc["_id"]}, doc, upsert=True, session=session)

    async def to_undo(self, tenant: str, merge_id: str, session: AsyncClientSession) -> R | None:
        """The merge an unmerge undoes, unless it was never followed or is undone already."""
        record = await self.get(tenant, merge_id, session)
        return None if record is None or record.unmerged else record

    async def undone(self, tenant: str, record: R, session: AsyncClientSession) -> None:
        await self.put(tenant, record.model_copy(update={"unmerged": True}), session)

    async def survivor_of(
        self, tenant: str, customer_id: str, session: AsyncClientSession
    ) -> str | None:
        """Whom `customer_id` is merged into now, if anyone: the duplicate's own events are
        keyed by the duplicate and the merge by its survivor, so they may come in either
        order, and what arrives for a merged-away customer belongs to the survivor."""
        query = {"tenant": tenant, "merged_id": customer_id, "unmerged": False}
        doc = await self._merges.find_one(query, {"survivor_id": 1}, session=session)
        return str(doc["survivor_id"]) if doc else None
