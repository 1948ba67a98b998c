"""Compensation: each tenant's policy, the requests, and the documents that make the review
thresholds hold under concurrency.

- `compensation_tallies`: one document per (customer, period); an issued compensation is
  counted by a conditional `$inc` whose filter is the threshold (count and amount still
  leave room), inside the transaction that decided it, so racing requests for one customer
  serialise on that document and no period takes more than its limit.
- `compensation_orders`: one document per order listing its compensations; adding to it
  returns what it held before, so of two requests for one order racing, the second sees
  the first (their writes to the one document conflict and the loser runs again)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.mongo import Document, Index, update_and_read
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.compensation import (
    Compensation,
    CompensationState,
    Tally,
    room,
)
from services.coupon.domain.compensation_policy import (
    Period,
    PeriodLimit,
    StoredPolicy,
)
from services.coupon.store.coupons import key

POLICIES = "compensation_policies"
COMPENSATIONS = "compensations"
TALLIES = "compensation_tallies"
ORDERS = "compensation_orders"
#: Longer than the longest period (a month), so no current period's tally is swept.
TALLY_LIFETIME = timedelta(days=40)

INDEXES = [
    Index(COMPENSATIONS, [("tenant", 1), ("requested_at", -1), ("_id", -1)]),
    Index(COMPENSATIONS, [("tenant", 1), ("state", 1), ("requested_at", -1)]),
    Index(COMPENSATIONS, [("tenant", 1), ("customer_id", 1), ("requested_at", -1)]),
    Index(
        COMPENSATIONS,
        [("issuing_since", 1)],
        partial={"state": str(CompensationState.ISSUING)},
        name="compensations_issuing",
    ),
    Index(TALLIES, [("expires_at", 1)]),
]


def _expiry() -> Document:
    """A tally outlives its period (a month at most) before the sweep deletes it."""
    return {"expires_at": utcnow() + TALLY_LIFETIME}


class TallyMoved(Exception):
    """A tally changed between reading and counting: the decision is taken again."""


def compensation_id(tenant: str, reference: str) -> str:
    return f"cmpn_{key(tenant, 'compensation', reference)}"


def tally_id(tenant: str, customer_id: str, period: Period, period_key: str) -> str:
    return key(tenant, "tally", customer_id, period, period_key)


def _compensation(doc: Document) -> Compensation:
    return Compensation.model_validate({**doc, "id": doc["_id"]})


class CompensationStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.policies = db[POLICIES]
        self.compensations = db[COMPENSATIONS]
        self.tallies = db[TALLIES]
        self.orders = db[ORDERS]

    # ------------------------------------------------------------------ policy

    async def put_policy(self, tenant: str, policy: StoredPolicy) -> None:
        doc = policy.model_dump(mode="python")
        await self.policies.replace_one({"_id": tenant}, doc, upsert=True)

    async def policy(self, tenant: str) -> StoredPolicy | None:
        doc = await self.policies.find_one({"_id": tenant}, {"_id": 0})
        return StoredPolicy.model_validate(doc) if doc else None

    async def remove_policy(self, tenant: str) -> bool:
        return (await self.policies.delete_one({"_id": tenant})).deleted_count == 1

    # ----------------------------------------------------------- compensations

    async def add(self, tenant: str, c: Compensation, session: AsyncClientSession) -> None:
        doc = c.model_dump(mode="python", exclude={"id"})
        await self.compensations.insert_one({"_id": c.id, "tenant": tenant, **doc}, session=session)

    async def get(
        self, tenant: str, compensation_id: str, session: AsyncClientSession | None = None
    ) -> Compensation | None:
        doc = await self.compensations.find_one(
            {"_id": compensation_id, "tenant": tenant}, session=session
        )
        return _compensation(doc) if doc else None

    async def replace(
        self,
        tenant: str,
        c: Compensation,
        was: CompensationState,
        session: AsyncClientSession,
    ) -> bool:
        """Save `c` if it is still in the state it was read in."""
        doc = c.model_dump(mode="python", exclude={"id"})
        result = await self.compensations.replace_one(
            {"_id": c.id, "tenant": tenant, "state": str(was)},
            {"tenant": tenant, **doc},
            session=session,
        )
        return result.matched_count == 1

    async def remove(
        self, tenant: str, compensation_id: str, was: CompensationState, session: AsyncClientSession
    ) -> bool:
        result = await self.compensations.delete_one(
            {"_id": compensation_id, "tenant": tenant, "state": str(was)}, session=session
        )
        return result.deleted_count == 1

    async def page(
        self,
        tenant: str,
        page: PageRequest,
        state: CompensationState | None,
        customer_id: str | None,
    ) -> tuple[list[Compensation], str | None]:
        """Newest first."""
        query: dict[str, Any] = {"tenant": tenant}
        if state is not None:
            query["state"] = str(state)
        if customer_id is not None:
            query["customer_id"] = customer_id
        if page.after:
            at = datetime.fromisoformat(str(page.after_value("requested_at")))
            last = str(page.after_value("id"))
            query["$or"] = [
                {"requested_at": {"$lt": at}},
                {"requested_at": at, "_id": {"$lt": last}},
            ]
        docs = await (
            self.compensations.find(query)
            .sort([("requested_at", -1), ("_id", -1)])
            .limit(page.limit + 1)
            .to_list()
        )
        items = [_compensation(d) for d in docs]
        marks = [{"id": c.id, "requested_at": c.requested_at.isoformat()} for c in items]
        return items[: page.limit], next_cursor(marks, page.limit, "id", "requested_at")

    async def stalled(self, before: datetime, limit: int) -> list[tuple[str, Compensation]]:
        """Compensations of every tenant left `issuing` since before `before`."""
        query = {"state": str(CompensationState.ISSUING), "issuing_since": {"$lte": before}}
        docs = await self.compensations.find(query).limit(limit).to_list()
        return [(d["tenant"], _compensation(d)) for d in docs]

    # ------------------------------------------------------------------ tallies

    async def read_tallies(
        self, ids: dict[Period, str], session: AsyncClientSession
    ) -> dict[Period, Tally]:
        query = {"_id": {"$in": list(ids.values())}}
        docs = await self.tallies.find(query, session=session).to_list()
        found = {d["_id"]: Tally(count=d["count"], amount=d["amount"]) for d in docs}
        return {period: found.get(i, Tally()) for period, i in ids.items()}

    async def count_within(
        self,
        ids: dict[Period, str],
        limits: list[PeriodLimit],
        value: int,
        session: AsyncClientSession,
    ) -> None:
        """Count one compensation of `value` in each period, only while the period's
        limits leave room for it (TallyMoved when one no longer does)."""
        for limit in limits:
            count, amount = room(limit, value)
            query: dict[str, Any] = {"_id": ids[limit.period]}
            if count is not None:
                query["count"] = {"$lte": count}
            if amount is not None:
                query["amount"] = {"$lte": amount}
            if not await self._inc(query, 1, value, session):
                raise TallyMoved(ids[limit.period])
        unlimited = {limit.period for limit in limits}
        for period, i in ids.items():
            if period not in unlimited:
                await self.count(i, 1, value, session)

    async def count(self, tally: str, count: int, amount: int, session: AsyncClientSession) -> None:
        """Move a tally without a guard (a reviewer's approval, or undoing a count)."""
        await self.tallies.update_one(
            {"_id": tally},
            {"$inc": {"count": count, "amount": amount}, "$setOnInsert": _expiry()},
            upsert=True,
            session=session,
        )

    async def _inc(
        self, query: dict[str, Any], count: int, amount: int, session: AsyncClientSession
    ) -> bool:
        """The guarded `$inc`; a tally not yet written starts at zero, which fits any limit
        (the caller decided from the same read), so it is created first."""
        await self.tallies.update_one(
            {"_id": query["_id"]},
            {"$setOnInsert": {"count": 0, "amount": 0, **_expiry()}},
            upsert=True,
            session=session,
        )
        result = await self.tallies.update_one(
            query, {"$inc": {"count": count, "amount": amount}}, session=session
        )
        return result.modified_count == 1

    async def sweep_tallies(self, now: datetime) -> int:
        """Delete tallies whose period is long over."""
        return (await self.tallies.delete_many({"expires_at": {"$lte": now}})).deleted_count

    # ------------------------------------------------------------------- orders

    async def note_order(
        self, tenant: str, order_id: str, compensation_id: str, session: AsyncClientSession
    ) -> list[str]:
        """Add the compensation to its order's list; the compensations it listed before."""
        before = await update_and_read(
            self.orders,
            {"_id": key(tenant, "order", order_id)},
            {"$addToSet": {"compensations": compensation_id}},
            upsert=True,
            before=True,
            session=session,
        )
        return [c for c in (before or {}).get("compensations", []) if c != compensation_id]

    async def forget_order(
        self, tenant: str, order_id: str, compensation_id: str, session: AsyncClientSession
    ) -> None:
        await self.orders.update_one(
            {"_id": key(tenant, "order", order_id)},
            {"$pull": {"compensations": compensation_id}},
            session=session,
        )
