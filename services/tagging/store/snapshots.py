"""Snapshots: the member list of one segment build, frozen, so a campaign targets a list that no
longer moves. Members are stored sorted in chunks of `CHUNK` ids: a million members are 200
documents, written in seconds, where one document per member would take minutes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index

SNAPSHOTS = "segment_snapshots"
SNAPSHOT_CHUNKS = "segment_snapshot_chunks"
#: Ids per chunk document: about 200 KB of ids, far under the 16 MB document limit.
CHUNK = 5_000
#: Chunk documents per insert_many.
WRITE_BATCH = 20
INDEXES = [
    Index(SNAPSHOTS, [("tenant", 1), ("segment_id", 1), ("taken_at", -1)], name="by_segment"),
    Index(SNAPSHOT_CHUNKS, [("snapshot_id", 1), ("last", 1)], name="by_last"),
]


class Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    snapshot_id: str
    tenant: str
    segment_id: str
    build_id: str
    rule_version: int
    count: int
    taken_at: datetime


class SnapshotStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._snapshots = db[SNAPSHOTS]
        self._chunks = db[SNAPSHOT_CHUNKS]

    async def write(self, snapshot: Snapshot, member_ids: Sequence[str]) -> None:
        """Chunks first, the snapshot record last: a listed snapshot is always whole. A
        rerun of a build (after a crash) writes the same chunk ids and replaces nothing."""
        await self._chunks.delete_many({"snapshot_id": snapshot.snapshot_id})
        chunks = [
            _chunk(snapshot, n, member_ids[at : at + CHUNK])
            for n, at in enumerate(range(0, len(member_ids), CHUNK))
        ]
        for at in range(0, len(chunks), WRITE_BATCH):
            await self._chunks.insert_many(chunks[at : at + WRITE_BATCH], ordered=False)
        doc = {"_id": snapshot.snapshot_id, **snapshot.model_dump()}
        await self._snapshots.replace_one({"_id": snapshot.snapshot_id}, doc, upsert=True)

    async def get(self, tenant: str, snapshot_id: str) -> Snapshot | None:
        doc = await self._snapshots.find_one({"_id": snapshot_id, "tenant": tenant})
        return Snapshot.model_validate(doc) if doc else None

    async def of_segment(self, tenant: str, segment_id: str, *, limit: int) -> list[Snapshot]:
        """Newest first."""
        cursor = self._snapshots.find({"tenant": tenant, "segment_id": segment_id})
        docs = await cursor.sort("taken_at", -1).limit(limit).to_list()
        return [Snapshot.model_validate(doc) for doc in docs]

    async def members(self, snapshot_id: str, *, after: str | None, limit: int) -> list[str]:
        """Member ids in order, after `after`."""
        query: Document = {"snapshot_id": snapshot_id}
        if after is not None:
            query["last"] = {"$gt": after}
        found: list[str] = []
        async for chunk in self._chunks.find(query).sort("last", 1):
            ids = chunk["ids"]
            found.extend(i for i in ids if after is None or i > after)
            if len(found) >= limit:
                break
        return found[:limit]

    async def prune(self, tenant: str, segment_id: str, *, keep: int) -> None:
        """Drop all but the newest `keep` snapshots of the segment."""
        kept = await self.of_segment(tenant, segment_id, limit=keep)
        if len(kept) < keep:
            return
        oldest_kept = kept[-1].taken_at
        query = {"tenant": tenant, "segment_id": segment_id, "taken_at": {"$lt": oldest_kept}}
        await self._delete(query)

    async def drop_segment(self, tenant: str, segment_id: str) -> None:
        await self._delete({"tenant": tenant, "segment_id": segment_id})

    async def _delete(self, query: Document) -> None:
        ids = [doc["_id"] for doc in await self._snapshots.find(query, {"_id": 1}).to_list()]
        if ids:
            await self._chunks.delete_many({"snapshot_id": {"$in": ids}})
            await self._snapshots.delete_many({"_id": {"$in": ids}})


def _chunk(snapshot: Snapshot, n: int, ids: Sequence[str]) -> Document:
    return {
        "_id": f"{snapshot.snapshot_id}:{n:06d}",
        "tenant": snapshot.tenant,
        "snapshot_id": snapshot.snapshot_id,
        "n": n,
        "first": ids[0],
        "last": ids[-1],
        "ids": list(ids),
    }
