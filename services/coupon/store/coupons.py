"""Coupons in wallets, and the keys that settle every race.

The embedded store pays for each index on every insert (about 0.15 ms per document per
index, partial or not), and claims are the hot path, so coupons carry one secondary index
(the wallet's) and the rules live in keys:

- a coupon's `_id` is a digest of (tenant, batch, customer, slot): a customer's n-th coupon
  of a batch takes slot n of at most `per_customer_limit`, so two replicas can never both
  give one customer one too many (the second insert of an `_id` fails);
- `daily_claims` holds one key per (batch, customer, day, daily slot), only for batches
  with a daily limit;
- `grant_references` maps (batch, reference) to the coupon a grant made;
- `order_coupons` maps an order to the one coupon it holds or used (one coupon per order),
  with the lock's expiry while it is locked."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index, update_and_read
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.coupons import Coupon, CouponState

COUPONS = "coupons"
DAILY = "daily_claims"
GRANTS = "grant_references"
ORDERS = "order_coupons"

INDEXES = [
    Index(COUPONS, [("tenant", 1), ("customer_id", 1)]),
    Index(ORDERS, [("expires_at", 1)], partial={"expires_at": {"$type": "date"}}),
]


def key(*parts: str | int) -> str:
    """An opaque, fixed-length id naming exactly `parts`."""
    raw = "\x1f".join(str(p) for p in parts).encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def coupon_id(tenant: str, batch_id: str, customer_id: str, slot: int | str) -> str:
    return f"cpn_{key(tenant, batch_id, customer_id, slot)}"


def daily_id(tenant: str, batch_id: str, customer_id: str, day: str, slot: int) -> str:
    return key(tenant, batch_id, customer_id, day, slot)


def grant_id(tenant: str, batch_id: str, reference: str) -> str:
    return key(tenant, batch_id, "ref", reference)


def _stored_as(state: CouponState, now: datetime) -> Document:
    """How a coupon in `state` as of `now` is stored: expiry and lapsed locks are applied
    when read (see `effective_state`), not written."""
    available, locked = str(CouponState.AVAILABLE), str(CouponState.LOCKED)
    unused = {"$or": [{"state": available}, {"state": locked, "lock.expires_at": {"$lte": now}}]}
    if state == CouponState.AVAILABLE:
        return {**unused, "valid_until": {"$gt": now}}
    if state == CouponState.EXPIRED:
        return {**unused, "valid_until": {"$lte": now}}
    if state == CouponState.LOCKED:
        return {"state": locked, "lock.expires_at": {"$gt": now}}
    return {"state": str(state)}


def coupon(doc: Document) -> Coupon:
    return Coupon.model_validate({**doc, "id": doc["_id"]})


def coupon_doc(tenant: str, c: Coupon) -> Document:
    doc = c.model_dump(mode="python", exclude={"id"}, exclude_none=True)
    return {"_id": c.id, "tenant": tenant, **doc}


class CouponStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.coupons = db[COUPONS]
        self.daily = db[DAILY]
        self.grants = db[GRANTS]
        self.orders = db[ORDERS]

    # ------------------------------------------------------------------ claiming

    async def issue(
        self,
        coupons: list[Document],
        daily: list[str],
        grants: dict[str, str],
        session: AsyncClientSession,
    ) -> None:
        """Insert the coupons with their daily keys and grant references; a key taken
        meanwhile by another replica aborts the transaction (DuplicateKeyError)."""
        await self.coupons.insert_many(coupons, ordered=False, session=session)
        if daily:
            await self.daily.insert_many([{"_id": k} for k in daily], session=session)
        if grants:
            docs = [{"_id": g, "coupon_id": c} for g, c in grants.items()]
            await self.grants.insert_many(docs, session=session)

    async def existing(
        self, collection: str, ids: list[str], session: AsyncClientSession
    ) -> set[str]:
        """Which of `ids` exist (coupons or daily keys): one `_id $in` read."""
        if not ids:
            return set()
        docs = (
            await self.coupons.database[collection]
            .find({"_id": {"$in": ids}}, {"_id": 1}, session=session)
            .to_list()
        )
        return {d["_id"] for d in docs}

    async def granted(self, ids: list[str], session: AsyncClientSession) -> dict[str, Coupon]:
        """The coupons earlier grants made, by grant key."""
        links = await self.grants.find({"_id": {"$in": ids}}, session=session).to_list()
        if not links:
            return {}
        coupon_ids = [link["coupon_id"] for link in links]
        docs = await self.coupons.find({"_id": {"$in": coupon_ids}}, session=session).to_list()
        by_id = {d["_id"]: coupon(d) for d in docs}
        return {link["_id"]: by_id[link["coupon_id"]] for link in links}

    async def insert_one(self, doc: Document, session: AsyncClientSession) -> None:
        await self.coupons.insert_one(doc, session=session)

    # -------------------------------------------------------------------- reading

    async def get(
        self, tenant: str, coupon_id: str, session: AsyncClientSession | None = None
    ) -> Coupon | None:
        doc = await self.coupons.find_one({"_id": coupon_id, "tenant": tenant}, session=session)
        return coupon(doc) if doc else None

    async def wallet(
        self,
        tenant: str,
        customer_id: str,
        page: PageRequest,
        now: datetime,
        states: list[CouponState] | None = None,
    ) -> tuple[list[Coupon], str | None]:
        """The customer's coupons, newest first, in the `states` they are in as of `now`."""
        query: dict[str, Any] = {"tenant": tenant, "customer_id": customer_id}
        if states:
            query["$and"] = [{"$or": [_stored_as(state, now) for state in states]}]
        if page.after:
            at = datetime.fromisoformat(str(page.after_value("claimed_at")))
            last = page.after_value("id")
            query.setdefault("$and", []).append(
                {"$or": [{"claimed_at": {"$lt": at}}, {"claimed_at": at, "_id": {"$lt": last}}]}
            )
        docs = await (
            self.coupons.find(query).sort([("claimed_at", -1), ("_id", -1)]).limit(page.limit + 1)
        ).to_list()
        items = [coupon(d) for d in docs]
        marks = [{"id": c.id, "claimed_at": c.claimed_at.isoformat()} for c in items]
        return items[: page.limit], next_cursor(marks, page.limit, "id", "claimed_at")

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

    async def count_by_state(self, tenant: str, batch_id: str) -> dict[str, int]:
        """A scan of the batch's coupons: for the console, not the hot path."""
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

    async def valid_since(
        self, tenant: str, batch_ids: list[str], since: datetime, session: AsyncClientSession
    ) -> list[Coupon]:
        """The batches' coupons valid after `since` (a scan: when a campaign ends)."""
        docs = await self.coupons.find(
            {"tenant": tenant, "batch_id": {"$in": batch_ids}, "valid_until": {"$gt": since}},
            session=session,
        ).to_list()
        return [coupon(d) for d in docs]

    # ----------------------------------------------------------------- changing

    async def change(
        self,
        tenant: str,
        coupon_id: str,
        expect: dict[str, Any],
        update: dict[str, Any],
        session: AsyncClientSession,
    ) -> Coupon | None:
        """Apply `update` only if the coupon still matches `expect`; None when it does not.
        (Not findAndModify: the embedded store answers it by scanning every coupon.)"""
        doc = await update_and_read(
            self.coupons, {"_id": coupon_id, "tenant": tenant, **expect}, update, session=session
        )
        return coupon(doc) if doc else None

    # ------------------------------------------------------------------ orders

    async def order_link(
        self, tenant: str, order_id: str, session: AsyncClientSession | None = None
    ) -> Document | None:
        return await self.orders.find_one({"_id": f"{tenant}:{order_id}"}, session=session)

    async def for_order(
        self, tenant: str, order_id: str, session: AsyncClientSession | None = None
    ) -> Coupon | None:
        """The coupon the order holds or used, or whose lapsed lock last named it."""
        link = await self.order_link(tenant, order_id, session)
        return await self.get(tenant, link["coupon_id"], session) if link else None

    async def link_order(
        self,
        tenant: str,
        order_id: str,
        coupon_id: str,
        expires_at: datetime | None,
        session: AsyncClientSession,
    ) -> None:
        """Name the order's coupon (DuplicateKeyError: the order already holds one)."""
        await self.orders.insert_one(
            {"_id": f"{tenant}:{order_id}", "tenant": tenant, "coupon_id": coupon_id,
             "expires_at": expires_at},
            session=session,
        )  # fmt: skip

    async def relink_order(
        self, tenant: str, order_id: str, coupon_id: str, expires_at: datetime | None,
        session: AsyncClientSession,
    ) -> None:  # fmt: skip
        await self.orders.update_one(
            {"_id": f"{tenant}:{order_id}"},
            {"$set": {"coupon_id": coupon_id, "expires_at": expires_at}},
            session=session,
        )

    async def unlink_order(self, tenant: str, order_id: str, session: AsyncClientSession) -> None:
        await self.orders.delete_one({"_id": f"{tenant}:{order_id}"}, session=session)

    async def expired_locks(self, now: datetime, limit: int) -> list[Document]:
        return await self.orders.find({"expires_at": {"$lte": now}}).limit(limit).to_list()
