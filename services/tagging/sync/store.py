"""Tag sync at rest: the queue written with each assignment change (`tag_sync_queue`), the
record of what reached the platform (`tag_sync_log`), and links to platform contacts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.tagging.sync.connector import ChangeOutcome, SyncStatus, TagChange

QUEUE = "tag_sync_queue"
LOG = "tag_sync_log"
CONTACTS = "tag_sync_contacts"
PLATFORM_TAGS = "tag_sync_platform_tags"
INDEXES = [
    Index(QUEUE, [("due_at", 1)], name="due"),
    Index(LOG, [("tenant", 1), ("_id", -1)], name="by_tenant"),
]


class SyncQueue:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._queue = db[QUEUE]

    async def add(self, changes: list[TagChange], session: AsyncClientSession) -> None:
        """In the assignment's transaction: a change is queued if and only if it happened."""
        if changes:
            docs = [_queued(c) for c in changes]
            await self._queue.insert_many(docs, session=session)

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[TagChange]:
        """Take due changes for `lease`: each by one conditional update, so two workers
        never push the same change at once."""
        token = uuid.uuid4().hex
        query = {"due_at": {"$lte": now}}
        due = await self._queue.find(query, {"_id": 1}).sort("due_at", 1).limit(limit).to_list()
        claimed = []
        for doc in due:
            taken = await self._queue.find_one_and_update(
                {"_id": doc["_id"], "due_at": {"$lte": now}},
                {"$set": {"due_at": now + lease, "claim": token}},
                return_document=ReturnDocument.AFTER,
            )
            if taken is not None:
                claimed.append(_change(taken))
        return claimed

    async def done(self, change_id: str) -> None:
        await self._queue.delete_one({"_id": change_id})

    async def retry_at(self, change_id: str, due_at: datetime) -> None:
        await self._queue.update_one(
            {"_id": change_id}, {"$set": {"due_at": due_at}, "$inc": {"attempts": 1}}
        )


class SyncLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._log = db[LOG]

    async def record(
        self, change: TagChange, outcome: ChangeOutcome, *, attempts: int, at: datetime
    ) -> None:
        """One entry per change, updated on every attempt."""
        synced_at = at if outcome.status == SyncStatus.SYNCED else None
        entry = {
            "tenant": change.tenant,
            "change": change.model_dump(exclude={"attempts", "change_id", "tenant"}),
            "status": str(outcome.status),
            "attempts": attempts,
            "errcode": outcome.errcode,
            "errmsg": outcome.errmsg,
            "synced_at": synced_at,
            "updated_at": at,
        }
        await self._log.update_one({"_id": change.change_id}, {"$set": entry}, upsert=True)

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[Document], str | None]:
        query: Document = {"tenant": tenant}
        if page.after:
            query["_id"] = {"$lt": str(page.after_value("_id"))}
        docs = await self._log.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        return docs[: page.limit], next_cursor(docs, page.limit, "_id")


class ContactLinks:
    """Customer -> platform contact (WeCom external_userid and the staff userid who follows
    them). Filled by `PUT /tag-sync/contacts/{customer_id}` (see the sync API's docstring)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._contacts = db[CONTACTS]
        self._tags = db[PLATFORM_TAGS]

    async def link(self, tenant: str, customer_id: str, external_userid: str, userid: str) -> None:
        doc = {"tenant": tenant, "external_userid": external_userid, "userid": userid}
        await self._contacts.replace_one({"_id": f"{tenant}:{customer_id}"}, doc, upsert=True)

    async def contact(self, tenant: str, customer_id: str) -> Document | None:
        return await self._contacts.find_one({"_id": f"{tenant}:{customer_id}"})

    async def platform_tag(self, platform: str, tenant: str, tag_id: str) -> str | None:
        doc = await self._tags.find_one({"_id": f"{platform}:{tenant}:{tag_id}"})
        return doc["platform_id"] if doc else None

    async def remember_tag(self, platform: str, tenant: str, tag_id: str, platform_id: str) -> None:
        key = {"_id": f"{platform}:{tenant}:{tag_id}"}
        await self._tags.replace_one(key, {"platform_id": platform_id}, upsert=True)


def _queued(change: TagChange) -> Document:
    doc = change.model_dump(exclude={"change_id"})
    return {"_id": change.change_id, **doc, "due_at": change.queued_at}


def _change(doc: Document) -> TagChange:
    return TagChange.model_validate({**doc, "change_id": doc["_id"]})
