"""What reach keeps of other services' facts, from their events: consent per channel and
purpose, the profile attributes templates may use, merges (on the profile: a duplicate's
`merged_into`, a survivor's `merged_ids`), subscription-message authorisations (the quota
ledger: one message per authorisation), and each tenant's contact policy."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index, update_and_read
from services.reach.domain.pressure import Policy

CONSENTS = "consents"
PROFILES = "profiles"
QUOTAS = "subscription_quotas"
POLICIES = "policies"
#: Withdrawals reach must still tell the customer service about (the owner of consent).
FORWARDS = "consent_forwards"
INDEXES = [
    Index(PROFILES, [("tenant", 1), ("birthday_month", 1)], name="by_birthday_month"),
    Index(FORWARDS, [("next_at", 1)], name="due"),
    Index(CONSENTS, [("tenant", 1), ("customer_id", 1)], name="by_customer"),
    Index(QUOTAS, [("tenant", 1), ("customer_id", 1)], name="by_customer"),
]


#: Enough for any real chain of merges; bounds the look-up should the records ever loop.
MAX_SAME_PERSON = 50


def consent_key(tenant: str, customer_id: str, channel: str, purpose: str) -> str:
    return f"{tenant}/{customer_id}/{channel}/{purpose}"


class AudienceStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._consents = db[CONSENTS]
        self._profiles = db[PROFILES]
        self._quotas = db[QUOTAS]
        self._policies = db[POLICIES]
        self._forwards = db[FORWARDS]

    # ---------------------------------------------------------------- consent

    async def record_consent(
        self,
        tenant: str,
        customer_id: str,
        channel: str,
        purpose: str,
        *,
        granted: bool,
        at: datetime,
        session: AsyncClientSession | None = None,
    ) -> None:
        """Keep the newest state: an older event arriving late changes nothing."""
        key = consent_key(tenant, customer_id, channel, purpose)
        doc = {"tenant": tenant, "customer_id": customer_id, "channel": channel}
        doc |= {"purpose": purpose, "granted": granted, "changed_at": at}
        await self._newest_wins(key, doc, at, session)

    async def _newest_wins(
        self, key: str, doc: Document, at: datetime, session: AsyncClientSession | None
    ) -> None:
        current = await self._consents.find_one({"_id": key}, session=session)
        if current is not None and current["changed_at"] > at:
            return
        await self._consents.replace_one({"_id": key}, doc, upsert=True, session=session)

    async def consented(
        self, tenant: str, customer_ids: list[str], channel: str, purpose: str
    ) -> set[str]:
        keys = [consent_key(tenant, c, channel, purpose) for c in customer_ids]
        cursor = self._consents.find({"_id": {"$in": keys}, "granted": True}, {"customer_id": 1})
        return {d["customer_id"] for d in await cursor.to_list()}

    # ---------------------------------------------------------------- profiles

    async def record_profile(
        self, tenant: str, customer_id: str, fields: Document, session: AsyncClientSession
    ) -> None:
        await self._profiles.update_one(
            {"_id": f"{tenant}/{customer_id}"},
            {"$set": {"tenant": tenant, "customer_id": customer_id, **fields}},
            upsert=True,
            session=session,
        )

    async def profiles(self, tenant: str, customer_ids: list[str]) -> dict[str, Document]:
        keys = [f"{tenant}/{c}" for c in customer_ids]
        docs = await self._profiles.find({"_id": {"$in": keys}}).to_list()
        return {d["customer_id"]: d for d in docs}

    async def born_in(self, tenant: str, month: int, limit: int = 100_000) -> list[Document]:
        cursor = self._profiles.find({"tenant": tenant, "birthday_month": month})
        return await cursor.limit(limit).to_list()

    async def forget(self, tenant: str, customer_id: str, session: AsyncClientSession) -> None:
        query = {"tenant": tenant, "customer_id": customer_id}
        await self._consents.delete_many(query, session=session)
        await self._profiles.delete_many(query, session=session)
        await self._quotas.delete_many(query, session=session)

    # ---------------------------------------------------------------- merges

    async def record_merge(
        self,
        tenant: str,
        merge_id: str,
        survivor_id: str,
        merged_id: str,
        session: AsyncClientSession,
    ) -> None:
        """Mark `merged_id` merged into `survivor_id`. Upserts that set only the merge's
        own fields: the duplicate's events (keyed by the duplicate) may come before or after
        this one (keyed by the survivor), and neither overwrites the other. Kept per merge,
        so an undo of one merge leaves another of the same customer standing."""
        await self._add(tenant, merged_id, "merged_into", merge_id, survivor_id, session)
        await self._add(tenant, survivor_id, "merged_ids", merge_id, merged_id, session)

    async def record_unmerge(
        self,
        tenant: str,
        merge_id: str,
        survivor_id: str,
        restored_id: str,
        session: AsyncClientSession,
    ) -> None:
        for customer_id, field in ((restored_id, "merged_into"), (survivor_id, "merged_ids")):
            await self._profiles.update_one(
                {"_id": f"{tenant}/{customer_id}"},
                {"$pull": {field: {"merge_id": merge_id}}},
                session=session,
            )

    async def _add(
        self,
        tenant: str,
        customer_id: str,
        field: str,
        merge_id: str,
        other: str,
        session: AsyncClientSession,
    ) -> None:
        await self._profiles.update_one(
            {"_id": f"{tenant}/{customer_id}"},
            {
                "$set": {"tenant": tenant, "customer_id": customer_id},
                "$addToSet": {field: {"merge_id": merge_id, "customer_id": other}},
            },
            upsert=True,
            session=session,
        )

    async def same_person(
        self, tenant: str, customer_id: str, session: AsyncClientSession | None = None
    ) -> list[str]:
        """The customer and everyone merged into it, directly or through another merge."""
        found, level = [customer_id], [customer_id]
        while level and len(found) < MAX_SAME_PERSON:
            docs = await self._profiles.find(
                {"_id": {"$in": [f"{tenant}/{c}" for c in level]}},
                {"merged_ids": 1},
                session=session,
            ).to_list()
            level = [
                m["customer_id"]
                for d in docs
                for m in d.get("merged_ids", [])
                if m["customer_id"] not in found
            ]
            found += level
        return found

    # ---------------------------------------------------------------- subscription quota

    async def authorise(
        self, tenant: str, customer_id: str, platform_template_id: str, count: int
    ) -> int:
        """Add authorisations (each allows exactly one message); the balance after."""
        doc = await update_and_read(
            self._quotas,
            {"_id": f"{tenant}/{customer_id}/{platform_template_id}"},
            {
                "$inc": {"available": count},
                "$setOnInsert": {"tenant": tenant, "customer_id": customer_id, "used_by": []},
                "$set": {"platform_template_id": platform_template_id},
            },
            upsert=True,
        )
        assert doc is not None  # upserted
        return int(doc["available"])

    async def quotas(
        self, tenant: str, customer_ids: list[str], platform_template_id: str
    ) -> dict[str, int]:
        keys = [f"{tenant}/{c}/{platform_template_id}" for c in customer_ids]
        docs = await self._quotas.find(
            {"_id": {"$in": keys}}, {"customer_id": 1, "available": 1}
        ).to_list()
        return {d["customer_id"]: int(d["available"]) for d in docs}

    async def use_quota(
        self, tenant: str, customer_id: str, platform_template_id: str, message_id: str
    ) -> bool:
        """Spend one authorisation on `message_id`, once: a re-sent message spends nothing
        more. False when none is left."""
        key = f"{tenant}/{customer_id}/{platform_template_id}"
        spent = await self._quotas.update_one(
            {"_id": key, "available": {"$gt": 0}, "used_by": {"$ne": message_id}},
            {
                "$inc": {"available": -1},
                "$push": {"used_by": {"$each": [message_id], "$slice": -50}},
            },
        )
        if spent.modified_count:
            return True
        return await self._quotas.count_documents({"_id": key, "used_by": message_id}) > 0

    # ---------------------------------------------------------------- policy

    async def policy(self, tenant: str) -> Policy:
        doc = await self._policies.find_one({"_id": tenant})
        return Policy.model_validate(doc["policy"]) if doc else Policy()

    async def save_policy(self, tenant: str, policy: Policy) -> None:
        doc = {"_id": tenant, "policy": policy.model_dump(mode="json")}
        await self._policies.replace_one({"_id": tenant}, doc, upsert=True)

    # ---------------------------------------------------------------- forwards

    async def add_forward(self, doc: Document, session: AsyncClientSession) -> None:
        await self._forwards.insert_one(doc, session=session)

    async def due_forwards(self, now: datetime, limit: int = 50) -> list[Document]:
        return await self._forwards.find({"next_at": {"$lte": now}}).limit(limit).to_list()

    async def forwarded(self, forward_id: str) -> None:
        await self._forwards.delete_one({"_id": forward_id})

    async def forward_later(self, forward_id: str, at: datetime) -> None:
        await self._forwards.update_one(
            {"_id": forward_id}, {"$set": {"next_at": at}, "$inc": {"attempts": 1}}
        )
