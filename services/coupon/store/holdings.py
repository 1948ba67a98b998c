"""What customers hold: their coupons' batch, channel, reference and claim time, for the
claim centre (held per batch) and on-site drops (earlier drops per rule).

The filter names only the wallet index's fields (tenant, customer_id): the embedded
store's planner scans the whole collection as soon as a filter names a field its index
lacks (explain: COLLSCAN), so the rest is filtered in code; a customer holds few coupons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document
from services.coupon.store.coupons import COUPONS


@dataclass(frozen=True)
class Held:
    batch_id: str
    channel: str
    reference: str | None
    claimed_at: datetime


class HoldingsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.coupons = db[COUPONS]

    async def of_customers(self, tenant: str, customers: list[str]) -> dict[str, list[Held]]:
        """Every coupon each customer holds (any state), in one read for all of them."""
        found: dict[str, list[Held]] = {c: [] for c in customers}
        docs = await self.coupons.find(
            {"tenant": tenant, "customer_id": {"$in": customers}},
            {"customer_id": 1, "batch_id": 1, "channel": 1, "reference": 1, "claimed_at": 1},
        ).to_list()
        for d in docs:
            held = Held(d["batch_id"], d["channel"], d.get("reference"), d["claimed_at"])
            found[d["customer_id"]].append(held)
        return found
