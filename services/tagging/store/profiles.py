from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.tagging.domain.profiles import CustomerProfile, TenantPortrait

PROFILES = "customer_profiles"
PORTRAITS = "tenant_portraits"
INDEXES = [Index(PROFILES, [("tenant", 1), ("_id", 1)], name="by_tenant")]


class ProfileStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._profiles = db[PROFILES]
        self._portraits = db[PORTRAITS]

    async def add_profile(self, profile: CustomerProfile, session: AsyncClientSession) -> None:
        doc = profile.model_dump(exclude={"customer_id"})
        await self._profiles.replace_one(
            {"_id": profile.customer_id}, doc, upsert=True, session=session
        )

    async def count_in_portrait(
        self, profile: CustomerProfile, session: AsyncClientSession
    ) -> None:
        await self._portraits.update_one(
            {"_id": profile.tenant},
            {
                "$inc": {
                    "customers": 1,
                    f"by_source_channel.{profile.source_channel}": 1,
                    f"by_lifecycle_stage.{profile.lifecycle_stage}": 1,
                }
            },
            upsert=True,
            session=session,
        )

    async def profile(self, tenant: str, customer_id: str) -> CustomerProfile | None:
        doc = await self._profiles.find_one({"_id": customer_id, "tenant": tenant})
        return CustomerProfile.model_validate({**doc, "customer_id": doc["_id"]}) if doc else None

    async def portrait(self, tenant: str) -> TenantPortrait:
        doc = await self._portraits.find_one({"_id": tenant})
        return TenantPortrait.model_validate({**(doc or {}), "tenant": tenant})
