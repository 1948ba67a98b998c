"""Tenants' coupon policies: one document per tenant (`_id` = tenant)."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.domain.policy import TenantPolicy

POLICIES = "tenant_policies"
INDEXES: list[Index] = []


class PolicyStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.policies = db[POLICIES]

    async def get(self, tenant: str) -> TenantPolicy | None:
        doc = await self.policies.find_one({"_id": tenant})
        return TenantPolicy.model_validate({**doc, "own": True}) if doc else None

    async def put(self, tenant: str, policy: TenantPolicy) -> None:
        doc = policy.model_dump(exclude={"own"})
        await self.policies.replace_one({"_id": tenant}, doc, upsert=True)
