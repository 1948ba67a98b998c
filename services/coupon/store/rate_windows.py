"""Fixed-window rate counters shared by every replica: one document per key and window,
incremented in bulk for a whole batch of requests and read back in one query."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from servicekit.mongo import Document, Index

RATE_WINDOWS = "rate_windows"

INDEXES = [Index(RATE_WINDOWS, [("expires_at", 1)], expire_after_seconds=0)]


class RateWindowStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.windows = db[RATE_WINDOWS]

    async def add(self, increments: dict[str, int], expires: dict[str, datetime]) -> dict[str, int]:
        """Add each key's increment and answer every key's count after it."""
        ops = [
            UpdateOne(
                {"_id": key},
                {"$inc": {"n": n}, "$setOnInsert": {"expires_at": expires[key]}},
                upsert=True,
            )
            for key, n in increments.items()
        ]
        try:
            await self.windows.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # Two replicas upserting one new window: the loser's upsert hits the winner's
            # document; apply those increments again as plain updates.
            failed = [ops[e["index"]] for e in exc.details.get("writeErrors", [])]
            retry = [UpdateOne(op._filter, op._doc, upsert=True) for op in failed]
            await self.windows.bulk_write(retry, ordered=False)
        docs = await self.windows.find({"_id": {"$in": list(increments)}}).to_list()
        return {d["_id"]: int(d["n"]) for d in docs}


def window_expiry(start: datetime, seconds: int) -> datetime:
    return start + timedelta(seconds=seconds * 2)
