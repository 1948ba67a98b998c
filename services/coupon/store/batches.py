"""Batches. `unleased` is the stock no replica has leased yet: a lease (store/leases.py) is
one conditional `$inc` that cannot take it below zero, so the coupons issued never exceed
the stock."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.domain.batches import BatchSpec

BATCHES = "batches"

INDEXES = [Index(BATCHES, [("tenant", 1), ("campaign_id", 1)])]


class BatchState(StrEnum):
    SCHEDULED = "scheduled"  # approved, campaign not running yet
    ACTIVE = "active"
    ENDED = "ended"


class Batch(BaseModel):
    id: str
    tenant: str
    campaign_id: str
    spec: BatchSpec
    #: The batch whose coupon a return coupon issues when its order is paid.
    follow_up_batch_id: str | None = None
    state: BatchState
    unleased: int
    created_at: datetime
    #: Set while used coupons have spent the budget to its alert line (monitoring writes
    #: it, domain/alerts.py): issuing is refused.
    issuing_blocked: bool = False


def _batch(doc: Document) -> Batch:
    return Batch.model_validate({**doc, "id": doc["_id"]})


class BatchStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.batches = db[BATCHES]

    async def add_many(self, batches: list[Batch], session: AsyncClientSession) -> None:
        docs = [{"_id": b.id, **b.model_dump(mode="python", exclude={"id"})} for b in batches]
        await self.batches.insert_many(docs, session=session)

    async def get(
        self, tenant: str, batch_id: str, session: AsyncClientSession | None = None
    ) -> Batch | None:
        doc = await self.batches.find_one({"_id": batch_id, "tenant": tenant}, session=session)
        return _batch(doc) if doc else None

    async def of_campaign(self, tenant: str, campaign_id: str) -> list[Batch]:
        docs = await self.batches.find({"tenant": tenant, "campaign_id": campaign_id}).to_list()
        return [_batch(d) for d in docs]

    async def many(self, tenant: str, batch_ids: list[str]) -> dict[str, Batch]:
        docs = await self.batches.find({"tenant": tenant, "_id": {"$in": batch_ids}}).to_list()
        return {d["_id"]: _batch(d) for d in docs}

    async def set_state(
        self,
        tenant: str,
        campaign_id: str,
        state: BatchState,
        session: AsyncClientSession,
    ) -> None:
        await self.batches.update_many(
            {"tenant": tenant, "campaign_id": campaign_id},
            {"$set": {"state": str(state)}},
            session=session,
        )

    async def take_one(self, tenant: str, batch_id: str, session: AsyncClientSession) -> bool:
        """One unit straight from the stock, inside a transaction (a returned coupon)."""
        result = await self.batches.update_one(
            {"_id": batch_id, "tenant": tenant, "unleased": {"$gte": 1}},
            {"$inc": {"unleased": -1}},
            session=session,
        )
        return result.modified_count == 1

    async def put_back_one(self, tenant: str, batch_id: str, session: AsyncClientSession) -> None:
        """Undo `take_one` (the unit was not issued after all)."""
        await self.batches.update_one(
            {"_id": batch_id, "tenant": tenant}, {"$inc": {"unleased": 1}}, session=session
        )
