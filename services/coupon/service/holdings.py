"""Customers' holdings read together: the claim centre's visits and the drop checks that
arrive at once share one read (as the claim desk and the rate limiter batch theirs)."""

from __future__ import annotations

from collections import defaultdict

from services.coupon.service.batching import Batcher
from services.coupon.store.holdings import Held, HoldingsStore


class Holdings:
    def __init__(self, store: HoldingsStore, *, max_items: int = 500) -> None:
        self.store = store
        self.batcher: Batcher[tuple[str, str], list[Held]] = Batcher(
            self._round, max_items=max_items, name="holdings"
        )

    async def of(self, tenant: str, customer_id: str) -> list[Held]:
        """The customer's coupons (any state), as of a read at most a round old."""
        return await self.batcher.submit((tenant, customer_id))

    async def _round(self, asks: list[tuple[str, str]]) -> list[list[Held]]:
        by_tenant: dict[str, set[str]] = defaultdict(set)
        for tenant, customer in asks:
            by_tenant[tenant].add(customer)
        found = {
            tenant: await self.store.of_customers(tenant, sorted(customers))
            for tenant, customers in by_tenant.items()
        }
        return [found[tenant][customer] for tenant, customer in asks]

    async def stop(self) -> None:
        await self.batcher.stop()
