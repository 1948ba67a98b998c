"""Queries of the expiry notices (service/expiry_notices.py): coupons due a notice, the
conditional mark, and the lease that lets one replica sweep at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from services.coupon.domain.coupons import CouponState
from services.coupon.store.coupons import COUPONS

LEASES = "worker_leases"
LEASE_ID = "coupon.expiry_notices"
#: Finds the coupons of one state whose validity ends in a window.
INDEXES = [Index(COUPONS, [("state", 1), ("valid_until", 1)], name="by_state_and_expiry")]


def _due(now: datetime, window: timedelta) -> Document:
    return {
        "state": str(CouponState.AVAILABLE),
        "valid_until": {"$gt": now, "$lte": now + window},
        "expiry_noticed_at": {"$exists": False},
    }


class ExpiryNoticeStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._coupons = db[COUPONS]
        self._leases = db[LEASES]

    async def due(
        self, now: datetime, window: timedelta, limit: int, session: AsyncClientSession
    ) -> list[Document]:
        """Available coupons ending within `window` of `now`, not noticed yet."""
        return await self._coupons.find(_due(now, window), session=session).limit(limit).to_list()

    async def mark(
        self, ids: list[str], now: datetime, window: timedelta, session: AsyncClientSession
    ) -> int:
        """Mark the coupons noticed, each only while it is still due; how many were."""
        marked = await self._coupons.update_many(
            {"_id": {"$in": ids}, **_due(now, window)},
            {"$set": {"expiry_noticed_at": now}},
            session=session,
        )
        return marked.modified_count

    async def hold_lease(self, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the sweep's lease; False while another replica holds it."""
        try:
            await self._leases.find_one_and_update(
                {"_id": LEASE_ID, "$or": [{"until": {"$lte": now}}, {"owner": owner}]},
                {"$set": {"owner": owner, "until": now + ttl}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False
        return True
