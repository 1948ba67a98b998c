"""Messages, one document per message id (the dedupe key's hash), and the drafts scheduled
for later. Every query of the send path works on a batch at once: the embedded store takes
thousands of documents a second in batches but only hundreds of single writes.

Cap slots (`day_slot`, `week_slot`, `month_slot`) are unique per customer and channel, so
the store itself refuses a message past a frequency cap when two senders race."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from servicekit.mongo import Document, Index, update_and_read
from services.reach.domain.conversion import Touch
from services.reach.domain.messages import TOUCHES, Draft, Status
from services.reach.domain.pressure import Counts, Windows

MESSAGES = "messages"
SCHEDULED = "scheduled"
DUPLICATE_KEY = 11000


def _slot_index(slot: str) -> Index:
    return Index(
        MESSAGES,
        [("tenant", 1), ("customer_id", 1), ("channel", 1), (slot, 1)],
        unique=True,
        partial={slot: {"$type": "string"}},
        name=f"one_message_per_{slot}",
    )


INDEXES = [
    _slot_index("day_slot"),
    _slot_index("week_slot"),
    _slot_index("month_slot"),
    Index(MESSAGES, [("tenant", 1), ("customer_id", 1), ("at", -1)], name="by_customer"),
    Index(
        MESSAGES, [("tenant", 1), ("channel", 1), ("week", 1), ("customer_id", 1)], name="by_week"
    ),
    Index(
        MESSAGES, [("tenant", 1), ("channel", 1), ("month", 1), ("customer_id", 1)], name="by_month"
    ),
    Index(MESSAGES, [("tenant", 1), ("campaign_id", 1), ("status", 1)], name="by_campaign"),
    Index(SCHEDULED, [("not_before", 1), ("lease_until", 1)], name="due"),
    Index(SCHEDULED, [("tenant", 1), ("coupon_id", 1)], name="by_coupon"),
]


@dataclass
class Inserted:
    """Which new messages the store took, and which it refused and why."""

    taken: set[str] = field(default_factory=set)
    #: Another sender wrote this message id first: it is theirs to send.
    duplicate: set[str] = field(default_factory=set)
    #: A cap slot was taken by a racing sender: decide again.
    slot_lost: set[str] = field(default_factory=set)


class Unsettled(Exception):
    """A reservation to settle is no longer there."""


class MessageStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._messages = db[MESSAGES]
        self._scheduled = db[SCHEDULED]

    # ------------------------------------------------------------------ reading

    async def existing(self, ids: list[str]) -> dict[str, Document]:
        docs = await self._messages.find({"_id": {"$in": ids}}).to_list()
        return {d["_id"]: d for d in docs}

    async def get(self, tenant: str, message_id: str) -> Document | None:
        return await self._messages.find_one({"_id": message_id, "tenant": tenant})

    async def by_id(self, message_id: str) -> Document | None:
        """A message found by id alone (a tracked link names no tenant; ids are unique)."""
        return await self._messages.find_one({"_id": message_id})

    async def of_customers(
        self, tenant: str, customer_ids: list[str], limit: int = 50
    ) -> list[Document]:
        cursor = self._messages.find({"tenant": tenant, "customer_id": {"$in": customer_ids}})
        return await cursor.sort("at", -1).limit(limit).to_list()

    async def counts(
        self, tenant: str, customer_ids: list[str], channel: str, w: Windows
    ) -> dict[str, Counts]:
        """Capped messages each customer has on `channel` in the windows of `w` (a day is
        within its week; the month matters for WeCom mass messages only)."""
        fields = {"customer_id": 1, "day": 1}
        query = {
            "tenant": tenant,
            "channel": channel,
            "week": w.week,
            "customer_id": {"$in": customer_ids},
        }
        tally: dict[str, list[int]] = {}
        for doc in await self._messages.find(query, fields).to_list():
            t = tally.setdefault(doc["customer_id"], [0, 0, 0])
            t[0] += doc.get("day") == w.day
            t[1] += 1
        if channel == "wechat":
            query = {
                "tenant": tenant,
                "channel": channel,
                "month": w.month,
                "customer_id": {"$in": customer_ids},
            }
            for doc in await self._messages.find(
                query, {"customer_id": 1, "month_slot": 1}
            ).to_list():
                tally.setdefault(doc["customer_id"], [0, 0, 0])[2] += bool(doc.get("month_slot"))
        return {c: Counts(day=d, week=wk, month_mass=m) for c, (d, wk, m) in tally.items()}

    async def touches(self, tenant: str, customer_ids: list[str], since: datetime) -> list[Touch]:
        """The latest touches of any of `customer_ids` (one person's ids) since `since`."""
        query = {
            "tenant": tenant,
            "customer_id": {"$in": customer_ids},
            "status": {"$in": [str(s) for s in TOUCHES]},
            "at": {"$gte": since},
        }
        docs = await self._messages.find(query).sort("at", -1).limit(50).to_list()
        return [
            Touch(
                message_id=d["_id"],
                at=d["at"],
                campaign_id=d.get("campaign_id"),
                rule_id=d.get("rule_id"),
                variant=d.get("variant"),
            )
            for d in docs
        ]

    async def campaign_figures(self, tenant: str, campaign_id: str) -> list[Document]:
        pipeline = [
            {"$match": {"tenant": tenant, "campaign_id": campaign_id}},
            {
                "$group": {
                    "_id": {"variant": "$variant", "status": "$status"},
                    "count": {"$sum": 1},
                    "clicked": {"$sum": {"$cond": [{"$ifNull": ["$clicked_at", False]}, 1, 0]}},
                }
            },
        ]
        return await (await self._messages.aggregate(pipeline)).to_list()

    # ------------------------------------------------------------------ writing

    async def insert(self, docs: list[Document]) -> Inserted:
        """Insert new messages in one batch; sort out the ones refused by a unique key."""
        result = Inserted(taken={d["_id"] for d in docs})
        if not docs:
            return result
        try:
            await self._messages.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details["writeErrors"]
            if any(e["code"] != DUPLICATE_KEY for e in errors):
                raise
            refused = [docs[e["index"]]["_id"] for e in errors]
            result.taken.difference_update(refused)
            # A refused id that exists was written by another sender; one that does not
            # lost a cap slot (the only other unique key).
            there = await self._messages.find({"_id": {"$in": refused}}, {"_id": 1}).to_list()
            result.duplicate = {d["_id"] for d in there}
            result.slot_lost = set(refused) - result.duplicate
        return result

    async def settle(self, settled: list[Document], session: AsyncClientSession) -> set[str]:
        """Write the settled messages over their reservations: one batched delete and one
        batched insert, which the embedded store takes several times faster than an update
        per message (or an `update_many` over their ids). A message no longer reserved was
        settled by another sender and is left alone; the ids settled here are returned."""
        if not settled:
            return set()
        reserved = {"_id": {"$in": [d["_id"] for d in settled]}, "status": str(Status.RESERVED)}
        found = await self._messages.find(reserved, {"_id": 1}, session=session).to_list()
        mine = {d["_id"] for d in found}
        gone = await self._messages.delete_many(
            {"_id": {"$in": sorted(mine)}, "status": str(Status.RESERVED)}, session=session
        )
        if gone.deleted_count != len(mine):
            raise Unsettled("a reservation changed while it was settled")
        if mine:
            await self._messages.insert_many(
                [d for d in settled if d["_id"] in mine], session=session
            )
        return mine

    async def release(self, message_id: str, reason: str) -> None:
        """A reserved message that may not go out after all (no quota): free its slots."""
        await self._messages.update_one(
            {"_id": message_id, "status": str(Status.RESERVED)},
            {
                "$set": {"status": str(Status.SUPPRESSED), "reason": reason},
                "$unset": {
                    "day_slot": "",
                    "week_slot": "",
                    "month_slot": "",
                    "day": "",
                    "week": "",
                    "month": "",
                },
            },
        )

    async def receipt(
        self,
        tenant: str,
        message_id: str,
        fields: Document,
        *,
        only_if: Document,
        session: AsyncClientSession,
    ) -> Document | None:
        """Apply a receipt when `only_if` holds; the message before the change, or None."""
        return await update_and_read(
            self._messages,
            {"_id": message_id, "tenant": tenant, **only_if},
            {"$set": fields},
            session=session,
            before=True,
        )

    async def forget(self, tenant: str, customer_id: str, session: AsyncClientSession) -> None:
        """Erasure: drop what was said to the customer, keep the counts' shape anonymous."""
        await self._messages.update_many(
            {"tenant": tenant, "customer_id": customer_id},
            {"$unset": {"content": "", "variables": ""}, "$set": {"erased": True}},
            session=session,
        )
        await self._scheduled.delete_many(
            {"tenant": tenant, "customer_id": customer_id}, session=session
        )

    # ------------------------------------------------------------------ scheduled drafts

    async def unknown(self, ids: list[str]) -> set[str]:
        """The ids neither sent nor waiting: a sweep schedules only these."""
        query = {"_id": {"$in": ids}}
        known = {d["_id"] for d in await self._messages.find(query, {"_id": 1}).to_list()}
        known |= {d["_id"] for d in await self._scheduled.find(query, {"_id": 1}).to_list()}
        return set(ids) - known

    async def schedule(
        self, drafts: list[Draft], session: AsyncClientSession | None = None
    ) -> None:
        """Keep drafts for later, once each (a repeat of the same id changes nothing)."""
        for draft in drafts:
            doc = draft.model_dump(mode="python")
            await self._scheduled.update_one(
                {"_id": draft.message_id},
                {"$setOnInsert": {**doc, "lease_until": draft.not_before}},
                upsert=True,
                session=session,
            )

    async def postpone(self, drafts: list[tuple[Draft, datetime]]) -> None:
        """Put drafts back with a later `not_before` (quiet hours; a lost cap slot)."""
        for draft, until in drafts:
            doc = {**draft.model_dump(mode="python"), "not_before": until, "lease_until": until}
            await self._scheduled.replace_one({"_id": draft.message_id}, doc, upsert=True)

    async def claim_due(
        self, now: datetime, owner: str, lease: timedelta, limit: int
    ) -> list[Draft]:
        """Lease up to `limit` due drafts to `owner`, so two replicas never work one draft."""
        due = {"not_before": {"$lte": now}, "lease_until": {"$lte": now}}
        ids = [d["_id"] for d in await self._scheduled.find(due, {"_id": 1}).limit(limit).to_list()]
        if not ids:
            return []
        await self._scheduled.update_many(
            {"_id": {"$in": ids}, **due}, {"$set": {"lease_until": now + lease, "owner": owner}}
        )
        docs = await self._scheduled.find(
            {"_id": {"$in": ids}, "owner": owner, "lease_until": now + lease}
        ).to_list()
        return [Draft.model_validate(_draft_fields(d)) for d in docs]

    async def done(self, ids: list[str], owner: str) -> None:
        await self._scheduled.delete_many({"_id": {"$in": ids}, "owner": owner})

    async def cancel_for_coupon(
        self, tenant: str, coupon_id: str, session: AsyncClientSession
    ) -> int:
        result = await self._scheduled.delete_many(
            {"tenant": tenant, "coupon_id": coupon_id}, session=session
        )
        return result.deleted_count

    async def scheduled_count(self, tenant: str) -> int:
        return await self._scheduled.count_documents({"tenant": tenant})


def _draft_fields(doc: Document) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in {"_id", "lease_until", "owner"}}
