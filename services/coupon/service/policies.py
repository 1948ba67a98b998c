"""Each tenant's coupon policy, as every use case reads it: cached per replica for
`policy_cache_seconds`, so the claim hot path does not pay a store read per claim.

A change is seen at once by the replica that saved it and by the others within the cache
period; concurrent readers of an expired entry share one store read."""

from __future__ import annotations

from servicekit.caching import TenantCache
from servicekit.clock import utcnow
from servicekit.runtime import Runtime
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
        self._policies = TenantCache(self._load, settings.policy_cache_seconds)

    async def of(self, tenant: str) -> TenantPolicy:
        return await self._policies.get(tenant)

    async def _load(self, tenant: str) -> TenantPolicy:
        return await self.store.get(tenant) or self.default

    async def put(self, tenant: str, draft: PolicyDraft, actor_id: str) -> TenantPolicy:
        policy = TenantPolicy(
            **draft.model_dump(), own=True, updated_by=actor_id, updated_at=utcnow()
        )
        await self.store.put(tenant, policy)
        self._policies.put(tenant, policy)
        return policy


#: Where a replica keeps its one book in the runtime's state.
POLICIES = "policies"


def policy_book(runtime: Runtime) -> PolicyBook:
    """This replica's book of tenants' policies (one cache shared by every use case)."""
    book = runtime.state.get(POLICIES)
    if book is None:
        settings = runtime.settings
        assert isinstance(settings, CouponSettings)
        book = runtime.state[POLICIES] = PolicyBook(PolicyStore(runtime.db), settings)
    return book
