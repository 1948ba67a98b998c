"""Stock leases: the blocks of a batch's stock each replica holds, and the heartbeats that
say the replica holding them still lives.

A lease records the holding replica, the units `leased` (taken from the batch's
`unleased` in the same transaction) and the coupons `issued` under it (counted in the
transaction of each claim flush: one update per flush, not per claim), so what a lease
holds unissued is exactly `leased - issued`. Closing a lease (a clean stop, or the sweep
of a replica whose heartbeat stopped) marks it returned and gives that back to the stock
in one transaction. A flush counts its coupons only while the lease is still active: if a
sweep closed it meanwhile, the two transactions conflict on the lease document and the
flush finds it returned and issues nothing, so stock is never given back twice. (No
findAndModify: the embedded store answers it by scanning the collection.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index, update_and_read
from services.coupon.store.batches import BATCHES

LEASES = "stock_leases"
REPLICAS = "claim_replicas"
ACTIVE, RETURNED = "active", "returned"

INDEXES = [Index(LEASES, [("state", 1), ("replica", 1)])]


@dataclass(frozen=True)
class Taken:
    """Units leased, units left unleased, and the lease holding them; `fresh` when the
    lease is new (the one named was closed meanwhile, or there was none)."""

    units: int
    left: int
    lease_id: str | None
    fresh: bool


class LeaseStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.leases = db[LEASES]
        self.replicas = db[REPLICAS]
        self.batches = db[BATCHES]

    async def take(
        self,
        tenant: str,
        batch_id: str,
        replica: str,
        lease_id: str | None,
        wanted: int,
        now: datetime,
        session: AsyncClientSession,
    ) -> Taken:
        """Lease up to `wanted` units into `lease_id` (or a new lease), in the caller's
        transaction: the batch's `unleased` never goes below zero."""
        units, left = await self._from_stock(tenant, batch_id, wanted, session)
        if units == 0:
            return Taken(0, left, lease_id, fresh=False)
        if lease_id is not None:
            grown = await self.leases.update_one(
                {"_id": lease_id, "state": ACTIVE},
                {"$inc": {"leased": units}, "$set": {"leased_at": now}},
                session=session,
            )
            if grown.matched_count == 1:
                return Taken(units, left, lease_id, fresh=False)
        lease_id = f"lse_{uuid.uuid4().hex}"
        await self.leases.insert_one(
            {"_id": lease_id, "tenant": tenant, "batch_id": batch_id, "replica": replica,
             "leased": units, "issued": 0, "state": ACTIVE, "leased_at": now},
            session=session,
        )  # fmt: skip
        return Taken(units, left, lease_id, fresh=True)

    async def _from_stock(
        self, tenant: str, batch_id: str, wanted: int, session: AsyncClientSession
    ) -> tuple[int, int]:
        while wanted > 0:
            doc = await update_and_read(
                self.batches,
                {"_id": batch_id, "tenant": tenant, "unleased": {"$gte": wanted}},
                {"$inc": {"unleased": -wanted}},
                session=session,
            )
            if doc is not None:
                return wanted, int(doc["unleased"])
            current = await self.batches.find_one(
                {"_id": batch_id, "tenant": tenant}, {"unleased": 1}, session=session
            )
            left = int(current["unleased"]) if current else 0
            wanted = min(wanted, left)
        return 0, 0

    async def count_issued(self, lease_id: str, units: int, session: AsyncClientSession) -> bool:
        """Count coupons written under the lease (False: it was closed meanwhile)."""
        counted = await self.leases.update_one(
            {"_id": lease_id, "state": ACTIVE}, {"$inc": {"issued": units}}, session=session
        )
        return counted.matched_count == 1

    async def close(
        self, lease_id: str, by: str, now: datetime, session: AsyncClientSession
    ) -> int | None:
        """Return the lease's unissued units to its batch's stock (None: closed before)."""
        lease = await update_and_read(
            self.leases,
            {"_id": lease_id, "state": ACTIVE},
            {"$set": {"state": RETURNED, "returned_by": by, "returned_at": now}},
            session=session,
        )
        if lease is None:
            return None
        unissued = int(lease["leased"]) - int(lease["issued"])
        if unissued > 0:
            await self.batches.update_one(
                {"_id": lease["batch_id"], "tenant": lease["tenant"]},
                {"$inc": {"unleased": unissued}},
                session=session,
            )
        return unissued

    async def get(self, lease_id: str) -> Document | None:
        return await self.leases.find_one({"_id": lease_id})

    # -------------------------------------------------------------- liveness

    async def beat(self, replica: str, now: datetime) -> None:
        await self.replicas.update_one(
            {"_id": replica}, {"$set": {"heartbeat_at": now}}, upsert=True
        )

    async def forget(self, replica: str) -> None:
        await self.replicas.delete_one({"_id": replica})

    async def stranded(self, now: datetime, ttl_seconds: float, limit: int = 200) -> list[str]:
        """Active leases whose replica gave no sign of life (heartbeat, or leasing) for
        `ttl_seconds`: one read of the active leases (a few per replica) and one of their
        replicas' heartbeats."""
        leases = await self.leases.find({"state": ACTIVE}).limit(limit).to_list()
        holders = sorted({lease["replica"] for lease in leases})
        beats = {
            d["_id"]: d["heartbeat_at"]
            for d in await self.replicas.find({"_id": {"$in": holders}}).to_list()
        }
        cutoff = now - timedelta(seconds=ttl_seconds)
        return [
            lease["_id"]
            for lease in leases
            if max(lease["leased_at"], beats.get(lease["replica"], lease["leased_at"])) < cutoff
        ]
