"""What the claim centre reads: a tenant's batches still open for claiming (what the
customer holds comes from store/holdings.py)."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.store.batches import BATCHES, Batch, BatchState

#: The most open batches one claim centre lists.
MAX_OPEN = 200

INDEXES = [Index(BATCHES, [("tenant", 1), ("state", 1), ("spec.claim_until", 1)])]


class ClaimCentreStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.batches = db[BATCHES]

    async def open_batches(self, tenant: str, now: datetime) -> list[Batch]:
        """Active batches whose claim window has not ended (it may not have begun)."""
        docs = await (
            self.batches.find(
                {
                    "tenant": tenant,
                    "state": str(BatchState.ACTIVE),
                    "spec.claim_until": {"$gt": now},
                }
            )
            .sort("spec.claim_until", 1)
            .limit(MAX_OPEN)
            .to_list()
        )
        return [Batch.model_validate({**d, "id": d["_id"]}) for d in docs]
