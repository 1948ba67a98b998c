from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.tagging.domain.profiles import CustomerProfile, TenantPortrait

PROFILES = "customer_profiles"
PORTRAITS = "tenant_portraits"
#: Who is merged into someone else. A merge is keyed by its survivor and a registration by
#: its customer, so the two can arrive in either order; this outlives a missing profile.
MERGED = "merged_customers"
INDEXES = [Index(PROFILES, [("tenant", 1), ("_id", 1)], name="by_tenant")]


class ProfileStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._profiles = db[PROFILES]
        self._portraits = db[PORTRAITS]
        self._merged = db[MERGED]

    async def add_profile(self, profile: CustomerProfile, session: AsyncClientSession) -> None:
        doc = profile.model_dump(exclude={"customer_id"})
        await self._profiles.replace_one(
            {"_id": profile.customer_id}, doc, upsert=True, session=session
        )

    async def count_in_portrait(
        self, profile: CustomerProfile, session: AsyncClientSession, *, delta: int = 1
    ) -> None:
        """Add (or with delta=-1 take away) one customer in the tenant's portrait."""
        await self._move_in_portrait(
            profile.tenant,
            {
                "customers": delta,
                f"by_source_channel.{profile.source_channel}": delta,
                f"by_lifecycle_stage.{profile.lifecycle_stage}": delta,
            },
            session,
        )

    async def change_stage(
        self, profile: CustomerProfile, to_stage: str, session: AsyncClientSession
    ) -> None:
        await self._profiles.update_one(
            {"_id": profile.customer_id, "tenant": profile.tenant},
            {"$set": {"lifecycle_stage": to_stage}},
            session=session,
        )
        if profile.active:
            moves = {
                f"by_lifecycle_stage.{profile.lifecycle_stage}": -1,
                f"by_lifecycle_stage.{to_stage}": 1,
            }
            await self._move_in_portrait(profile.tenant, moves, session)

    async def set_active(
        self, profile: CustomerProfile, active: bool, session: AsyncClientSession
    ) -> None:
        await self._profiles.update_one(
            {"_id": profile.customer_id, "tenant": profile.tenant},
            {"$set": {"active": active}},
            session=session,
        )

    async def forget(self, profile: CustomerProfile, session: AsyncClientSession) -> None:
        await self._profiles.delete_one(
            {"_id": profile.customer_id, "tenant": profile.tenant}, session=session
        )

    async def remember_merged(
        self, tenant: str, customer_id: str, merged: bool, session: AsyncClientSession
    ) -> None:
        key = {"_id": customer_id, "tenant": tenant}
        if merged:
            await self._merged.replace_one(key, key, upsert=True, session=session)
        else:
            await self._merged.delete_one(key, session=session)

    async def is_merged(self, tenant: str, customer_id: str, session: AsyncClientSession) -> bool:
        key = {"_id": customer_id, "tenant": tenant}
        return await self._merged.find_one(key, session=session) is not None

    async def _move_in_portrait(
        self, tenant: str, moves: dict[str, int], session: AsyncClientSession
    ) -> None:
        await self._portraits.update_one(
            {"_id": tenant}, {"$inc": moves}, upsert=True, session=session
        )

    async def profile(
        self, tenant: str, customer_id: str, *, session: AsyncClientSession | None = None
    ) -> CustomerProfile | None:
        query = {"_id": customer_id, "tenant": tenant}
        doc = await self._profiles.find_one(query, session=session)
        return CustomerProfile.model_validate({**doc, "customer_id": doc["_id"]}) if doc else None

    async def portrait(self, tenant: str) -> TenantPortrait:
        doc = await self._portraits.find_one({"_id": tenant})
        return TenantPortrait.model_validate({**(doc or {}), "tenant": tenant})
