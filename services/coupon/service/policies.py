"""Each tenant's coupon policy, as every use case reads it: cached per replica for
`policy_cache_seconds`, so the claim hot path does not pay a store read per claim.

A change is seen at once by the replica that saved it and by the others within the cache
period; concurrent readers of an expired entry share one store read."""

from __future__ import annotations

import asyncio
import time

from servicekit.clock import utcnow
from services.coupon.domain.policy import PolicyDraft, TenantPolicy
from services.coupon.settings import CouponSettings
from services.coupon.store.policies import PolicyStore


def default_policy(settings: CouponSettings) -> TenantPolicy:
    """The policy of a tenant without one of its own: the service's settings."""
    return TenantPolicy(
        time_zone=settings.time_zone,
        min_margin_percent=settings.min_margin_percent,
        cost_ratio_percent=settings.cost_ratio_percent,
    )


class PolicyBook:
    def __init__(self, store: PolicyStore, settings: CouponSettings) -> None:
        self.store = store
        self.default = default_policy(settings)
        self.ttl = settings.policy_cache_seconds
        self._cache: dict[str, tuple[float, TenantPolicy]] = {}
        self._loading: dict[str, asyncio.Future[TenantPolicy]] = {}

    async def of(self, tenant: str) -> TenantPolicy:
        cached = self._cache.get(tenant)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        loading = self._loading.get(tenant)
        if loading is None:
            loading = asyncio.ensure_future(self._load(tenant))
            self._loading[tenant] = loading
            loading.add_done_callback(lambda _: self._loading.pop(tenant, None))
        return await asyncio.shield(loading)

    async def _load(self, tenant: str) -> TenantPolicy:
        policy = await self.store.get(tenant) or self.default
        self._cache[tenant] = (time.monotonic(), policy)
        return policy

    async def put(self, tenant: str, draft: PolicyDraft, actor_id: str) -> TenantPolicy:
        policy = TenantPolicy(
            **draft.model_dump(), own=True, updated_by=actor_id, updated_at=utcnow()
        )
        await self.store.put(tenant, policy)
        self._cache[tenant] = (time.monotonic(), policy)
        return policy
