"""Members' tiers and the record of every tier change."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.loyalty.domain.tiers import MemberTier, TierChange
from services.loyalty.store.versioned import VersionedStore

MEMBER_TIERS = "member_tiers"
TIER_CHANGES = "tier_changes"

INDEXES = [
    Index(MEMBER_TIERS, [("next_due_at", 1)], name="due"),
    Index(TIER_CHANGES, [("tenant", 1), ("customer_id", 1), ("at", -1)], name="by_customer"),
]


class MemberTierStore(VersionedStore[MemberTier]):
    model = MemberTier

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db[MEMBER_TIERS])
        self._changes = db[TIER_CHANGES]

    async def get(
        self, tenant: str, customer_id: str, *, session: AsyncClientSession | None = None
    ) -> MemberTier:
        return await self.load(tenant, customer_id, session=session) or MemberTier(
            customer_id=customer_id
        )

    async def put(
        self,
        tenant: str,
        member: MemberTier,
        session: AsyncClientSession,
        *,
        next_due_at: datetime | None,
    ) -> MemberTier:
        return await self.save(tenant, member.customer_id, member, session, next_due_at=next_due_at)

    async def record(self, tenant: str, change: TierChange, session: AsyncClientSession) -> None:
        await self._changes.insert_one({"tenant": tenant, **change.model_dump()}, session=session)

    async def changes(self, tenant: str, customer_id: str, limit: int = 100) -> list[TierChange]:
        cursor = self._changes.find({"tenant": tenant, "customer_id": customer_id})
        docs = await cursor.sort("at", -1).limit(limit).to_list()
        return [TierChange.model_validate(d) for d in docs]

    async def due(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        cursor = self._docs.find({"next_due_at": {"$lte": now}}, {"tenant": 1, "customer_id": 1})
        return [(d["tenant"], d["customer_id"]) for d in await cursor.limit(limit).to_list()]
