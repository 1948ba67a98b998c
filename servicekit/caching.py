"""A value per tenant, kept for a while: what a replica reads often and may see a little late
(policies, open batches, live rules)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TenantCache(Generic[T]):
    """`load(tenant)` kept for `ttl` seconds; the readers of a missing or expired entry share
    one load, so a burst of requests costs the store one read."""

    def __init__(self, load: Callable[[str], Awaitable[T]], ttl: float) -> None:
        self._load, self.ttl = load, ttl
        self._values: dict[str, tuple[float, T]] = {}
        self._loading: dict[str, asyncio.Future[T]] = {}

    async def get(self, tenant: str) -> T:
        cached = self._values.get(tenant)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        loading = self._loading.get(tenant)
        if loading is None:
            loading = asyncio.ensure_future(self._fill(tenant))
            self._loading[tenant] = loading
            loading.add_done_callback(lambda _: self._loading.pop(tenant, None))
        return await asyncio.shield(loading)

    def put(self, tenant: str, value: T) -> None:
        self._values[tenant] = (time.monotonic(), value)

    def forget(self, tenant: str) -> None:
        self._values.pop(tenant, None)

    async def _fill(self, tenant: str) -> T:
        value = await self._load(tenant)
        self.put(tenant, value)
        return value
