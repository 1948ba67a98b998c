"""What each customer merge moved, so an unmerge can move it back; and re-keying a
customer's grants, card holdings and order earnings from one id to another."""

from __future__ import annotations

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.loyalty.store.benefits import GRANTS, HOLDINGS
from services.loyalty.store.points import ORDER_EARNINGS

MERGES = "merges"
#: Collections whose documents belong to a customer by `customer_id` and follow a merge.
REKEYED = (GRANTS, HOLDINGS, ORDER_EARNINGS)
INDEXES = [Index(MERGES, [("tenant", 1), ("merged_id", 1)], name="by_merged")]


class MergeRecord(BaseModel):
    merge_id: str
    survivor_id: str
    merged_id: str
    lot_ids: list[str]
    pending_ids: list[str]
    principal: int
    bonus: int
    growth_by_day: dict[str, int]
    #: Ids (`_id`) of the re-keyed documents, by collection.
    rekeyed: dict[str, list[str]]
    unmerged: bool = False


class MergeStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._merges = db[MERGES]

    async def get(
        self, tenant: str, merge_id: str, session: AsyncClientSession
    ) -> MergeRecord | None:
        doc = await self._merges.find_one({"_id": f"{tenant}:{merge_id}"}, session=session)
        return MergeRecord.model_validate(doc) if doc else None

    async def survivor_of(
        self, tenant: str, customer_id: str, session: AsyncClientSession
    ) -> str | None:
        """Whom `customer_id` is merged into now, if anyone."""
        query = {"tenant": tenant, "merged_id": customer_id, "unmerged": False}
        doc = await self._merges.find_one(query, {"survivor_id": 1}, session=session)
        return str(doc["survivor_id"]) if doc else None

    async def put(self, tenant: str, record: MergeRecord, session: AsyncClientSession) -> None:
        doc = {"_id": f"{tenant}:{record.merge_id}", "tenant": tenant, **record.model_dump()}
        await self._merges.replace_one({"_id": doc["_id"]}, doc, upsert=True, session=session)

    async def rekey(
        self, tenant: str, from_id: str, to_id: str, session: AsyncClientSession
    ) -> dict[str, list[str]]:
        """Every document of `from_id` now belongs to `to_id`; returns their ids."""
        moved: dict[str, list[str]] = {}
        for name in REKEYED:
            query = {"tenant": tenant, "customer_id": from_id}
            ids = [
                d["_id"]
                for d in await self._db[name].find(query, {"_id": 1}, session=session).to_list()
            ]
            if ids:
                await self._db[name].update_many(
                    {"_id": {"$in": ids}},
                    {"$set": {"customer_id": to_id}, "$inc": {"version": 1}},
                    session=session,
                )
            moved[name] = ids
        return moved

    async def rekey_back(
        self, to_id: str, moved: dict[str, list[str]], session: AsyncClientSession
    ) -> None:
        for name, ids in moved.items():
            if ids:
                await self._db[name].update_many(
                    {"_id": {"$in": ids}},
                    {"$set": {"customer_id": to_id}, "$inc": {"version": 1}},
                    session=session,
                )
