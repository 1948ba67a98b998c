"""Fixed-window rate counters shared by every replica: one document per key and window,
incremented in bulk for a whole batch of requests and read back in one query."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from servicekit.mongo import Document, Index
from services.coupon.store.races import DUPLICATE_KEY

RATE_WINDOWS = "rate_windows"

#: No TTL index: an index costs every insert of the hot path, so windows past their
#: expiry are deleted by a periodic sweep instead (`sweep_expired`).
INDEXES: list[Index] = []


class RateWindowStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.windows = db[RATE_WINDOWS]

    async def add(self, increments: dict[str, int], expires: dict[str, datetime]) -> dict[str, int]:
        """Add each key's increment and answer every key's count after it.

        Most windows of a round are new (a customer's first claim this minute), and an
        insert costs the store far less than an upsert: the round inserts every window,
        then increments (and reads back) only those another round or replica had begun."""
        docs = [{"_id": k, "n": n, "expires_at": expires[k]} for k, n in increments.items()]
        counts = dict(increments)
        try:
            await self.windows.insert_many(docs, ordered=False)
            return counts
        except BulkWriteError as exc:
            existing = [docs[e["index"]]["_id"] for e in exc.details.get("writeErrors", [])]
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
        ops = [UpdateOne({"_id": k}, {"$inc": {"n": increments[k]}}) for k in existing]
        await self.windows.bulk_write(ops, ordered=False)
        found = await self.windows.find({"_id": {"$in": existing}}).to_list()
        counts.update({d["_id"]: int(d["n"]) for d in found})
        return counts


async def sweep_expired(store: RateWindowStore, now: datetime) -> int:
    """Delete windows past their expiry (a scan of a collection holding minutes of them)."""
    result = await store.windows.delete_many({"expires_at": {"$lt": now}})
    return result.deleted_count


def window_expiry(start: datetime, seconds: int) -> datetime:
    return start + timedelta(seconds=seconds * 2)
