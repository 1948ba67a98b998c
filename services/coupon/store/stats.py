"""Monitoring read models, fed by the customer service's order events (in the coupon
service's order consumer, after the order's coupon is confirmed), never by the claim path:

- `order_gmv`: one document per paid order: its amount net of refunds, its merchant and
  lines, and the coupon it used (batch, campaign, budget, discount) if any. Stats of a
  budget, campaign or batch add up the orders that used its coupons (indexed by each).
- `subject_days`: per merchant and per product and day (tenant's time zone), GMV and order
  counts split by orders with and without a coupon, and the subsidy (by budget): what the
  efficiency alert compares.

Coupon counts (issued, used) are read from the coupons themselves on demand: the coupons
carry no batch index on purpose (each index costs every claim), so these reads scan the
tenant's coupons; they serve the ops console, not a hot path."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.domain.coupons import CouponState
from services.coupon.store.budgets import BUDGETS
from services.coupon.store.campaigns import CAMPAIGNS
from services.coupon.store.coupons import COUPONS, key

ORDERS = "order_gmv"
DAYS = "subject_days"

INDEXES = [
    Index(ORDERS, [("tenant", 1), ("budget_id", 1)]),
    Index(ORDERS, [("tenant", 1), ("campaign_id", 1)]),
    Index(ORDERS, [("tenant", 1), ("batch_id", 1)]),
    Index(DAYS, [("tenant", 1), ("day", 1)]),
]


class GmvLine(BaseModel):
    line_id: str
    sku: str
    category: str | None = None
    amount: int


class OrderGmv(BaseModel):
    order_id: str
    customer_id: str
    amount: int
    merchant_id: str | None
    paid_day: str
    lines: list[GmvLine]
    coupon_id: str | None = None
    batch_id: str | None = None
    campaign_id: str | None = None
    budget_id: str | None = None
    discount: int = 0

    def line_subsidy(self, line: GmvLine) -> int:
        """The order's discount shared over its lines by amount."""
        return self.discount * line.amount // self.amount if self.amount > 0 else 0


class Totals(BaseModel):
    orders: int = 0
    gmv: int = 0
    discount: int = 0


class CouponCounts(BaseModel):
    issued: int = 0
    used: int = 0
    subsidy: int = 0


def _day_id(tenant: str, kind: str, subject: str, day: str) -> str:
    return key(tenant, kind, subject, day)


class StatsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.orders = db[ORDERS]
        self.days = db[DAYS]
        self.coupons = db[COUPONS]

    # -------------------------------------------------------------------- recording

    async def record_paid(self, tenant: str, order: OrderGmv, session: AsyncClientSession) -> bool:
        """Record a paid order once (False when it was recorded before)."""
        doc = {"_id": f"{tenant}:{order.order_id}", "tenant": tenant, "gmv": order.amount,
               "refunded": 0, **order.model_dump(mode="python")}  # fmt: skip
        # Looked up first: a duplicate key inside a transaction aborts the whole transaction,
        # which would then be retried (and fail) for minutes, holding up the consumer.
        if await self.orders.find_one({"_id": doc["_id"]}, {"_id": 1}, session=session):
            return False
        await self.orders.insert_one(doc, session=session)
        lines = {ln.line_id: ln.amount for ln in order.lines}
        await self._move_days(tenant, order, order.amount, lines, session, count=1)
        return True

    async def record_refund(
        self,
        tenant: str,
        order_id: str,
        amount: int | None,
        lines: dict[str, int] | None,
        session: AsyncClientSession,
    ) -> None:
        """Take a refund off the order's GMV (None: whatever is left of it, an order voided
        after payment), never below zero; off its products by the refunded lines, or spread
        over its lines by amount when the refund names none."""
        doc = await self.orders.find_one({"_id": f"{tenant}:{order_id}"}, session=session)
        if doc is None:
            return
        left = int(doc["gmv"])
        taken = left if amount is None else min(amount, left)
        if taken <= 0:
            return
        await self.orders.update_one(
            {"_id": doc["_id"]}, {"$inc": {"gmv": -taken, "refunded": taken}}, session=session
        )
        order = OrderGmv.model_validate(doc)
        by_line = lines or spread(taken, order.lines)
        await self._move_days(tenant, order, -taken, {k: -v for k, v in by_line.items()}, session)

    async def _move_days(
        self,
        tenant: str,
        order: OrderGmv,
        amount: int,
        line_amounts: dict[str, int],
        session: AsyncClientSession,
        *,
        count: int = 0,
    ) -> None:
        side = "with" if order.coupon_id else "without"
        ops = []
        if order.merchant_id:
            subsidy = order.discount if count else 0
            ops.append(self._day_op(tenant, order, "merchant", order.merchant_id, None,
                                    amount, subsidy, side, count))  # fmt: skip
        for line in order.lines:
            if line.line_id not in line_amounts:
                continue
            subsidy = order.line_subsidy(line) if count else 0
            ops.append(self._day_op(tenant, order, "product", line.sku, line.category,
                                    line_amounts[line.line_id], subsidy, side, count))  # fmt: skip
        if ops:
            await self.days.bulk_write(ops, ordered=False, session=session)

    @staticmethod
    def _day_op(
        tenant: str, order: OrderGmv, kind: str, subject: str, group: str | None,
        amount: int, subsidy: int, side: str, count: int,
    ) -> UpdateOne:  # fmt: skip
        inc: dict[str, int] = {f"gmv_{side}": amount, f"orders_{side}": count}
        if subsidy and order.budget_id:
            inc["subsidy"] = subsidy
            inc[f"subsidy_by_budget.{order.budget_id}"] = subsidy
        return UpdateOne(
            {"_id": _day_id(tenant, kind, subject, order.paid_day)},
            {
                "$setOnInsert": {"tenant": tenant, "subject_kind": kind, "subject_id": subject,
                                 "group": group or "", "day": order.paid_day},
                "$inc": inc,
            },
            upsert=True,
        )  # fmt: skip

    # ---------------------------------------------------------------------- reading

    async def order_totals(
        self, tenant: str, field: str, value: str | list[str], by: str = "batch_id"
    ) -> dict[str, Totals]:
        """GMV, orders and discount of the orders whose coupon's `field` (budget_id,
        campaign_id, batch_id) is `value` (or one of the values), by `by`."""
        match = {"$in": value} if isinstance(value, list) else value
        rows = await (
            await self.orders.aggregate(
                [
                    {"$match": {"tenant": tenant, field: match}},
                    {
                        "$group": {
                            "_id": f"${by}",
                            "orders": {"$sum": 1},
                            "gmv": {"$sum": "$gmv"},
                            "discount": {"$sum": "$discount"},
                        }
                    },
                ]
            )
        ).to_list()
        return {r["_id"]: Totals(**{k: int(r[k]) for k in ("orders", "gmv", "discount")})
                for r in rows}  # fmt: skip

    async def coupon_counts(self, tenant: str, field: str, value: str) -> dict[str, CouponCounts]:
        """Issued and used coupons, and the subsidy of the used ones, by batch (a scan of
        the tenant's coupons: see the module's note)."""
        rows = await (
            await self.coupons.aggregate(
                [
                    {"$match": {"tenant": tenant, field: value}},
                    {"$project": {"batch_id": 1, "state": 1, "discount": 1}},
                ]
            )
        ).to_list()
        counts: dict[str, CouponCounts] = {}
        for row in rows:
            c = counts.setdefault(row["batch_id"], CouponCounts())
            c.issued += 1
            if row.get("state") == str(CouponState.USED):
                c.used += 1
                c.subsidy += int(row.get("discount") or 0)
        return counts

    async def subject_days(self, tenant: str, since: date) -> list[Document]:
        query = {"tenant": tenant, "day": {"$gte": since.isoformat()}}
        return await self.days.find(query).to_list()

    async def tenants_since(self, since: date) -> list[str]:
        return sorted(await self.days.distinct("tenant", {"day": {"$gte": since.isoformat()}}))


def spread(amount: int, lines: list[GmvLine]) -> dict[str, int]:
    """`amount` shared over `lines` by their amounts, the rounding left on the largest."""
    total = sum(ln.amount for ln in lines)
    if total <= 0:
        return {}
    shares = {ln.line_id: amount * ln.amount // total for ln in lines}
    largest = max(lines, key=lambda ln: ln.amount).line_id
    shares[largest] += amount - sum(shares.values())
    return shares


def totals_of(parts: dict[str, Totals]) -> Totals:
    return Totals(
        orders=sum(t.orders for t in parts.values()),
        gmv=sum(t.gmv for t in parts.values()),
        discount=sum(t.discount for t in parts.values()),
    )


def counts_of(parts: dict[str, CouponCounts]) -> CouponCounts:
    return CouponCounts(
        issued=sum(c.issued for c in parts.values()),
        used=sum(c.used for c in parts.values()),
        subsidy=sum(c.subsidy for c in parts.values()),
    )


async def campaigns_of_budget(
    db: AsyncDatabase[Document], tenant: str, budget_id: str
) -> list[Document]:
    """The budget's campaigns (id, name, state, counters), for its stats."""
    fields = {"name": 1, "state": 1, "reserved": 1, "consumed": 1, "max_subsidy": 1}
    return await db[CAMPAIGNS].find({"tenant": tenant, "budget_id": budget_id}, fields).to_list()


async def sub_budgets(db: AsyncDatabase[Document], tenant: str, parent_id: str) -> list[Document]:
    """The budgets split from `parent_id` (one level)."""
    return await db[BUDGETS].find({"tenant": tenant, "parent_id": parent_id}).to_list()
