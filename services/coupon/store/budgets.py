"""Budgets and their ledger. Every change of a budget's counters is one conditional update
whose filter carries the rule (enough remaining, enough reserved), so no interleaving of
writers can take a counter below zero; the ledger entry is written in the same transaction."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.budgets import Budget, LedgerEntry, Movement

BUDGETS = "budgets"
LEDGER = "budget_ledger"

INDEXES = [
    Index(BUDGETS, [("tenant", 1), ("created_at", -1), ("_id", -1)]),
    Index(LEDGER, [("tenant", 1), ("budget_id", 1), ("at", 1), ("_id", 1)]),
]

#: How each movement changes the counters; the key guarded in the filter must stay >= 0.
EFFECTS: dict[Movement, tuple[dict[str, int], str | None]] = {
    Movement.TOP_UP: ({"amount": 1, "remaining": 1}, None),
    Movement.ALLOCATE: ({"allocated": 1, "remaining": -1}, "remaining"),
    Movement.RESERVE: ({"reserved": 1, "remaining": -1}, "remaining"),
    Movement.RELEASE: ({"reserved": -1, "remaining": 1}, "reserved"),
    Movement.CONSUME: ({"reserved": -1, "consumed": 1}, "reserved"),
    Movement.RESTORE: ({"consumed": -1, "reserved": 1}, "consumed"),
}


def _budget(doc: Document) -> Budget:
    return Budget.model_validate({**doc, "id": doc["_id"]})


class BudgetStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.budgets = db[BUDGETS]
        self.ledger = db[LEDGER]

    async def add(self, tenant: str, budget: Budget, session: AsyncClientSession) -> None:
        doc = budget.model_dump(exclude={"id"})
        await self.budgets.insert_one({"_id": budget.id, "tenant": tenant, **doc}, session=session)

    async def get(
        self, tenant: str, budget_id: str, session: AsyncClientSession | None = None
    ) -> Budget | None:
        doc = await self.budgets.find_one({"_id": budget_id, "tenant": tenant}, session=session)
        return _budget(doc) if doc else None

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[Budget], str | None]:
        query: dict[str, Any] = {"tenant": tenant}
        if page.after:
            query["_id"] = {"$lt": page.after_value("id")}
        docs = await self.budgets.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        items = [_budget(d) for d in docs]
        cursor = next_cursor([{"id": b.id} for b in items], page.limit, "id")
        return items[: page.limit], cursor

    async def move(
        self,
        tenant: str,
        budget_id: str,
        movement: Movement,
        amount: int,
        session: AsyncClientSession,
        **refs: str | None,
    ) -> Budget | None:
        """Apply `movement` if the budget allows it (None when not), and record it."""
        signs, guarded = EFFECTS[movement]
        query: dict[str, Any] = {"_id": budget_id, "tenant": tenant}
        if guarded:
            query[guarded] = {"$gte": amount}
        inc = {k: sign * amount for k, sign in signs.items()}
        doc = await self.budgets.find_one_and_update(
            query, {"$inc": inc}, session=session, return_document=True
        )
        if doc is None:
            return None
        await self.record(tenant, budget_id, movement, amount, session, **refs)
        return _budget(doc)

    async def consume_many(
        self,
        tenant: str,
        budget_id: str,
        uses: list[tuple[str, str, int]],
        session: AsyncClientSession,
    ) -> Budget | None:
        """Charge many used coupons (campaign, coupon, amount) at once: one guarded update
        by their total, and one ledger entry each in one insert (None: the reservation does
        not cover them, nothing changed)."""
        total = sum(amount for _, _, amount in uses)
        doc = await self.budgets.find_one_and_update(
            {"_id": budget_id, "tenant": tenant, "reserved": {"$gte": total}},
            {"$inc": {"reserved": -total, "consumed": total}},
            session=session,
            return_document=True,
        )
        if doc is None:
            return None
        at = utcnow()
        entries = [
            LedgerEntry(
                id=f"led_{uuid.uuid4().hex}", budget_id=budget_id, movement=Movement.CONSUME,
                amount=amount, campaign_id=campaign_id, coupon_id=coupon_id, at=at,
            )
            for campaign_id, coupon_id, amount in uses
        ]  # fmt: skip
        await self.ledger.insert_many(
            [{"_id": e.id, "tenant": tenant, **e.model_dump(exclude={"id"})} for e in entries],
            session=session,
        )
        return _budget(doc)

    async def record(
        self,
        tenant: str,
        budget_id: str,
        movement: Movement,
        amount: int,
        session: AsyncClientSession,
        **refs: str | None,
    ) -> None:
        entry = LedgerEntry(
            id=f"led_{uuid.uuid4().hex}",
            budget_id=budget_id,
            movement=movement,
            amount=amount,
            at=utcnow(),
            **refs,  # type: ignore[arg-type]
        )
        doc = entry.model_dump(exclude={"id"})
        await self.ledger.insert_one({"_id": entry.id, "tenant": tenant, **doc}, session=session)

    async def mark_alerted(
        self, tenant: str, budget_id: str, thresholds: list[int], session: AsyncClientSession
    ) -> None:
        await self.budgets.update_one(
            {"_id": budget_id, "tenant": tenant},
            {"$addToSet": {"alerts_raised": {"$each": thresholds}}},
            session=session,
        )

    async def entries(self, tenant: str, budget_id: str) -> list[LedgerEntry]:
        docs = (
            await self.ledger.find({"tenant": tenant, "budget_id": budget_id})
            .sort([("at", 1), ("_id", 1)])
            .to_list()
        )
        return [LedgerEntry.model_validate({**d, "id": d["_id"]}) for d in docs]
