"""Alerts, the keys that keep one open alert per condition, the approval and issuing
blocks a budget alert sets, and the lease of the evaluator's sweep.

`open_alerts` holds one document per open condition, `_id` = tenant and alert key: raising
inserts it in the transaction that inserts the alert, so two evaluators (two replicas
reacting to the same change) can never both raise one; resolving deletes it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.alerts import OPEN_STATES, Alert, AlertKind, AlertState
from services.coupon.store.batches import BATCHES
from services.coupon.store.budgets import BUDGETS
from services.coupon.store.campaigns import CAMPAIGNS
from services.coupon.store.leases import ACTIVE
from services.coupon.store.leases import LEASES as STOCK_LEASES

ALERTS = "alerts"
OPEN = "open_alerts"
LEASES = "alert_leases"

INDEXES = [
    Index(ALERTS, [("tenant", 1), ("raised_at", -1), ("_id", -1)]),
    Index(ALERTS, [("state", 1), ("kind", 1)]),
]


def _alert(doc: Document) -> Alert:
    return Alert.model_validate({**doc, "id": doc["_id"]})


class AlertExists(Exception):
    """The condition already has an open alert."""


class AlertStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.alerts = db[ALERTS]
        self.open = db[OPEN]

    async def open_for(
        self, tenant: str, key: str, session: AsyncClientSession | None = None
    ) -> Alert | None:
        link = await self.open.find_one({"_id": f"{tenant}:{key}"}, session=session)
        if link is None:
            return None
        doc = await self.alerts.find_one({"_id": link["alert_id"]}, session=session)
        return _alert(doc) if doc else None

    async def open_keys(self) -> set[tuple[str, str]]:
        """(tenant, key) of every open alert: what a sweep must look at even when the
        condition's subject did not move."""
        docs = await self.open.find({}, {"tenant": 1, "key": 1}).to_list()
        return {(d["tenant"], d["key"]) for d in docs}

    async def add(self, tenant: str, alert: Alert, session: AsyncClientSession) -> None:
        try:
            await self.open.insert_one(
                {"_id": f"{tenant}:{alert.key}", "tenant": tenant, "key": alert.key,
                 "alert_id": alert.id},
                session=session,
            )  # fmt: skip
        except DuplicateKeyError:
            raise AlertExists(alert.key) from None
        doc = alert.model_dump(mode="python", exclude={"id"})
        await self.alerts.insert_one({"_id": alert.id, "tenant": tenant, **doc}, session=session)

    async def change(
        self,
        tenant: str,
        alert_id: str,
        expect_states: tuple[AlertState, ...],
        fields: dict[str, Any],
        session: AsyncClientSession,
        *,
        count_update: bool = False,
    ) -> Alert | None:
        """Set `fields` if the alert is still in one of `expect_states`; None if not."""
        update: dict[str, Any] = {"$set": fields}
        if count_update:
            update["$inc"] = {"updates": 1}
        doc = await self.alerts.find_one_and_update(
            {"_id": alert_id, "tenant": tenant, "state": {"$in": [str(s) for s in expect_states]}},
            update,
            session=session,
            return_document=ReturnDocument.AFTER,
        )
        return _alert(doc) if doc else None

    async def close(self, tenant: str, key: str, session: AsyncClientSession) -> None:
        await self.open.delete_one({"_id": f"{tenant}:{key}"}, session=session)

    async def get(
        self, tenant: str, alert_id: str, session: AsyncClientSession | None = None
    ) -> Alert | None:
        doc = await self.alerts.find_one({"_id": alert_id, "tenant": tenant}, session=session)
        return _alert(doc) if doc else None

    async def page(
        self,
        tenant: str,
        page: PageRequest,
        states: list[AlertState] | None = None,
        kind: AlertKind | None = None,
    ) -> tuple[list[Alert], str | None]:
        """Newest first."""
        query: dict[str, Any] = {"tenant": tenant}
        if states:
            query["state"] = {"$in": [str(s) for s in states]}
        if kind is not None:
            query["kind"] = str(kind)
        if page.after:
            at = datetime.fromisoformat(str(page.after_value("raised_at")))
            last = page.after_value("id")
            query["$or"] = [{"raised_at": {"$lt": at}}, {"raised_at": at, "_id": {"$lt": last}}]
        docs = await (
            self.alerts.find(query).sort([("raised_at", -1), ("_id", -1)]).limit(page.limit + 1)
        ).to_list()
        items = [_alert(d) for d in docs]
        marks = [{"id": a.id, "raised_at": a.raised_at.isoformat()} for a in items]
        return items[: page.limit], next_cursor(marks, page.limit, "id", "raised_at")


class BudgetBlocks:
    """The budget alert's blocks, written where the checks read them: `approvals_blocked`
    on the budget (campaign approval reads it in its transaction), `issuing_blocked` on the
    budget (shown) and on the batches of the budget's campaigns (the claim desk's batch
    cache carries it, so the claim path pays nothing for it).

    Both are written in the alert's transaction; an approval (or a use of a coupon)
    racing it writes the same budget document, so one of the two runs again and sees the
    other."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.budgets = db[BUDGETS]
        self.campaigns = db[CAMPAIGNS]
        self.batches = db[BATCHES]

    async def set(
        self,
        tenant: str,
        budget_id: str,
        session: AsyncClientSession,
        *,
        approvals: bool,
        issuing: bool,
    ) -> None:
        await self.budgets.update_one(
            {"_id": budget_id, "tenant": tenant},
            {"$set": {"approvals_blocked": approvals, "issuing_blocked": issuing}},
            session=session,
        )
        campaigns = await self.campaigns.find(
            {"tenant": tenant, "budget_id": budget_id}, {"_id": 1}, session=session
        ).to_list()
        if campaigns:
            await self.batches.update_many(
                {"tenant": tenant, "campaign_id": {"$in": [c["_id"] for c in campaigns]}},
                {"$set": {"issuing_blocked": issuing}},
                session=session,
            )


async def held_unissued(db: AsyncDatabase[Document], tenant: str, batch_id: str) -> int:
    """Stock the replicas hold in active leases and have not issued yet: with the batch's
    `unleased`, exactly what is left of its stock."""
    leases = (
        await db[STOCK_LEASES]
        .find({"state": ACTIVE, "tenant": tenant, "batch_id": batch_id}, {"leased": 1, "issued": 1})
        .to_list()
    )
    return sum(max(0, int(d["leased"]) - int(d.get("issued", 0))) for d in leases)


class EvaluatorLease:
    """One replica at a time sweeps every condition (the others react only to their own
    changes): a lease document taken or extended by a conditional upsert, as the outbox
    relay's."""

    def __init__(self, db: AsyncDatabase[Document], owner: str, seconds: float) -> None:
        self.leases = db[LEASES]
        self.owner = owner
        self.length = timedelta(seconds=seconds)

    async def hold(self, now: datetime) -> bool:
        try:
            await self.leases.find_one_and_update(
                {"_id": "alert-evaluator", "$or": [{"owner": self.owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "until": now + self.length}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def release(self) -> None:
        await self.leases.delete_one({"_id": "alert-evaluator", "owner": self.owner})


__all__ = [
    "OPEN_STATES",
    "AlertExists",
    "AlertStore",
    "BudgetBlocks",
    "EvaluatorLease",
    "held_unissued",
]
