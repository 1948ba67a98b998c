"""Coupons in wallets. The unique indexes are the last line of every race:

- (batch, customer, slot): a customer's n-th coupon of a batch takes slot n of at most
  `per_customer_limit`, so two replicas can never both give the same customer one too many;
- (batch, customer, day, day_slot): the same for the daily limit;
- (batch, reference): one grant per partner reference;
- (active_order_id): one coupon per order, while locked or used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.coupons import Coupon, CouponState

COUPONS = "coupons"

INDEXES = [
    Index(COUPONS, [("tenant", 1), ("batch_id", 1), ("customer_id", 1), ("slot", 1)], unique=True),
    Index(
        COUPONS,
        [("tenant", 1), ("batch_id", 1), ("customer_id", 1), ("day", 1), ("day_slot", 1)],
        unique=True,
    ),
    Index(
        COUPONS,
        [("tenant", 1), ("batch_id", 1), ("reference", 1)],
        unique=True,
        partial={"reference": {"$type": "string"}},
    ),
    Index(
        COUPONS,
        [("tenant", 1), ("active_order_id", 1)],
        unique=True,
        partial={"active_order_id": {"$type": "string"}},
    ),
    Index(COUPONS, [("tenant", 1), ("customer_id", 1), ("_id", -1)]),
    Index(COUPONS, [("state", 1), ("lock.expires_at", 1)]),
    Index(COUPONS, [("tenant", 1), ("lock.order_id", 1)]),
]


def coupon(doc: Document) -> Coupon:
    return Coupon.model_validate({**doc, "id": doc["_id"]})


def coupon_doc(tenant: str, c: Coupon, *, slot: int, day: str, day_slot: int) -> Document:
    doc = c.model_dump(mode="python", exclude={"id"}, exclude_none=True)
    return {"_id": c.id, "tenant": tenant, **doc, "slot": slot, "day": day, "day_slot": day_slot}


class CouponStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.coupons = db[COUPONS]

    async def insert_many(self, docs: list[Document], session: AsyncClientSession) -> None:
        await self.coupons.insert_many(docs, ordered=False, session=session)

    async def held(
        self, tenant: str, batch_id: str, customers: list[str], session: AsyncClientSession
    ) -> list[Document]:
        """Slots and days of the customers' coupons of the batch (for limits)."""
        return await self.coupons.find(
            {"tenant": tenant, "batch_id": batch_id, "customer_id": {"$in": customers}},
            {"customer_id": 1, "slot": 1, "day": 1, "day_slot": 1},
            session=session,
        ).to_list()

    async def by_references(
        self, tenant: str, batch_id: str, references: list[str], session: AsyncClientSession
    ) -> dict[str, Coupon]:
        docs = await self.coupons.find(
            {"tenant": tenant, "batch_id": batch_id, "reference": {"$in": references}},
            session=session,
        ).to_list()
        return {d["reference"]: coupon(d) for d in docs}

    async def get(
        self, tenant: str, coupon_id: str, session: AsyncClientSession | None = None
    ) -> Coupon | None:
        doc = await self.coupons.find_one({"_id": coupon_id, "tenant": tenant}, session=session)
        return coupon(doc) if doc else None

    async def for_order(
        self, tenant: str, order_id: str, session: AsyncClientSession | None = None
    ) -> Coupon | None:
        """The coupon held or used by the order, or whose lapsed lock last named it."""
        doc = await self.coupons.find_one(
            {"tenant": tenant, "active_order_id": order_id}, session=session
        ) or await self.coupons.find_one(
            {"tenant": tenant, "lock.order_id": order_id, "state": str(CouponState.AVAILABLE)},
            session=session,
        )
        return coupon(doc) if doc else None

    async def wallet(
        self, tenant: str, customer_id: str, page: PageRequest, states: list[str] | None = None
    ) -> tuple[list[Coupon], str | None]:
        query: dict[str, Any] = {"tenant": tenant, "customer_id": customer_id}
        if states:
            query["state"] = {"$in": states}
        if page.after:
            query["_id"] = {"$lt": page.after_value("id")}
        docs = await self.coupons.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        items = [coupon(d) for d in docs]
        return items[: page.limit], next_cursor([{"id": c.id} for c in items], page.limit, "id")

    async def usable(self, tenant: str, customer_id: str, now: datetime) -> list[Coupon]:
        """Coupons that may apply at checkout: available or locked, validity not over."""
        docs = await self.coupons.find(
            {
                "tenant": tenant,
                "customer_id": customer_id,
                "state": {"$in": [str(CouponState.AVAILABLE), str(CouponState.LOCKED)]},
                "valid_until": {"$gt": now},
            }
        ).to_list(500)
        return [coupon(d) for d in docs]

    async def change(
        self,
        tenant: str,
        coupon_id: str,
        expect: dict[str, Any],
        update: dict[str, Any],
        session: AsyncClientSession,
    ) -> Coupon | None:
        """Apply `update` only if the coupon still matches `expect`; None when it does not."""
        doc = await self.coupons.find_one_and_update(
            {"_id": coupon_id, "tenant": tenant, **expect},
            update,
            session=session,
            return_document=True,
        )
        return coupon(doc) if doc else None

    async def count_by_state(self, tenant: str, batch_id: str) -> dict[str, int]:
        rows = await (
            await self.coupons.aggregate(
                [
                    {"$match": {"tenant": tenant, "batch_id": batch_id}},
                    {"$group": {"_id": "$state", "n": {"$sum": 1}}},
                ]
            )
        ).to_list()
        return {r["_id"]: r["n"] for r in rows}

    async def outstanding(self, tenant: str, batch_id: str, now: datetime) -> int:
        """Coupons of the batch that may still be used (available or locked, still valid)."""
        return await self.coupons.count_documents(
            {
                "tenant": tenant,
                "batch_id": batch_id,
                "state": {"$in": [str(CouponState.AVAILABLE), str(CouponState.LOCKED)]},
                "valid_until": {"$gt": now},
            }
        )

    async def expired_locks(self, now: datetime, limit: int) -> list[Document]:
        return (
            await self.coupons.find(
                {"state": str(CouponState.LOCKED), "lock.expires_at": {"$lte": now}},
                {"tenant": 1},
            )
            .limit(limit)
            .to_list()
        )
