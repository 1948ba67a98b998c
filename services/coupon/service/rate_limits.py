"""Rate limits that hold across replicas: the counters live in the store, and each replica
batches the requests it sees into one bulk increment and one read per round, so limiting
costs two store operations per round instead of one per request."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from servicekit.clock import utcnow
from servicekit.errors import DomainError
from services.coupon.domain.rate_limits import Limit, Verdict, judge, window_start_time
from services.coupon.service.batching import Batcher
from services.coupon.store.rate_windows import RateWindowStore, window_expiry


class RateLimited(DomainError):
    status = 429
    title = "Too many requests"

    def __init__(self, verdict: Verdict) -> None:
        assert verdict.limit is not None
        limit = verdict.limit
        super().__init__(
            f"at most {limit.limit} requests per {limit.seconds}s for this {limit.scope}",
            code="rate_limited",
            scope=limit.scope,
            retry_after=verdict.retry_after,
        )
        self.retry_after = verdict.retry_after


@dataclass(frozen=True)
class Ask:
    tenant: str
    limits: list[Limit]


class RateLimiter:
    def __init__(self, store: RateWindowStore, *, max_items: int = 1000) -> None:
        self.store = store
        self.batcher: Batcher[Ask, Verdict] = Batcher(
            self._round, max_items=max_items, name="rate-limits"
        )

    async def check(self, tenant: str, limits: list[Limit]) -> None:
        """Count this request in each window; RateLimited (429) when one is over."""
        limits = [lim for lim in limits if lim.limit > 0]
        if not limits:
            return
        verdict = await self.batcher.submit(Ask(tenant, limits))
        if not verdict.allowed:
            raise RateLimited(verdict)

    async def _round(self, asks: list[Ask]) -> list[Verdict]:
        now = utcnow()
        ids = [[lim.counter_id(a.tenant, now) for lim in a.limits] for a in asks]
        added = Counter(cid for row in ids for cid in row)
        expires = {
            cid: window_expiry(window_start_time(lim, now), lim.seconds)
            for a, row in zip(asks, ids, strict=True)
            for lim, cid in zip(a.limits, row, strict=True)
        }
        totals = await self.store.add(dict(added), expires)
        # This round's requests hold the last `added` places of each window, in order.
        seen: Counter[str] = Counter()
        verdicts = []
        for a, row in zip(asks, ids, strict=True):
            positions = []
            for cid in row:
                seen[cid] += 1
                positions.append(totals.get(cid, added[cid]) - added[cid] + seen[cid])
            verdicts.append(judge(a.limits, positions, now))
        return verdicts
