"""The kit's per-tenant cache: one load for a burst of readers, kept until its time is up,
replaced by `put`, dropped by `forget`, and never shared between tenants."""

from __future__ import annotations

import asyncio

from servicekit.caching import TenantCache


async def test_readers_of_a_missing_entry_share_one_load_per_tenant() -> None:
    loads: list[str] = []
    release = asyncio.Event()

    async def load(tenant: str) -> str:
        loads.append(tenant)
        await release.wait()
        return f"value of {tenant}"

    cache = TenantCache(load, ttl=60)
    readers = [asyncio.create_task(cache.get(t)) for t in ["a"] * 20 + ["b"] * 5]
    await asyncio.sleep(0)  # let every reader ask before the load answers
    release.set()
    answers = await asyncio.gather(*readers)
    assert sorted(loads) == ["a", "b"]
    assert answers == ["value of a"] * 20 + ["value of b"] * 5
    assert await cache.get("a") == "value of a" and loads.count("a") == 1


async def test_an_entry_is_loaded_again_when_expired_forgotten_or_replaced() -> None:
    count = 0

    async def load(tenant: str) -> int:
        nonlocal count
        count += 1
        return count

    cache: TenantCache[int] = TenantCache(load, ttl=0)
    assert [await cache.get("a"), await cache.get("a")] == [1, 2]  # ttl 0: always expired
    kept: TenantCache[int] = TenantCache(load, ttl=60)
    assert await kept.get("a") == 3 and await kept.get("a") == 3
    kept.forget("a")
    assert await kept.get("a") == 4
    kept.put("a", 99)
    assert await kept.get("a") == 99
