"""What the claim centre reads: a tenant's batches still open for claiming, and which of
them one customer holds coupons of (one read each)."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.store.batches import BATCHES, Batch, BatchState
from services.coupon.store.coupons import COUPONS

#: Return coupons (满返) are issued for an order, not claimed: they take no claim slot.
RETURN_CHANNEL = "order_return"
#: The most open batches one claim centre lists.
MAX_OPEN = 200

INDEXES = [Index(BATCHES, [("tenant", 1), ("state", 1), ("spec.claim_until", 1)])]


class ClaimCentreStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.batches = db[BATCHES]
        self.coupons = db[COUPONS]

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

    async def holdings(
        self, tenant: str, customer_id: str, batch_ids: list[str]
    ) -> dict[str, list[datetime]]:
        """When the customer claimed each coupon they hold of these batches, by batch."""
        held: dict[str, list[datetime]] = {b: [] for b in batch_ids}
        if not batch_ids:
            return held
        # Only the index's fields in the filter: the embedded store scans the whole
        # collection once a filter names a field its index lacks. A customer holds few.
        docs = await self.coupons.find(
            {"tenant": tenant, "customer_id": customer_id},
            {"batch_id": 1, "claimed_at": 1, "channel": 1},
        ).to_list()
        for d in docs:
            # Return coupons are issued for an order, outside the per-customer slots.
            if d["batch_id"] in held and d.get("channel") != RETURN_CHANNEL:
                held[d["batch_id"]].append(d["claimed_at"])
        return held
