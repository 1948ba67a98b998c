"""Subsidy plans and their indicators (one document per plan holding every candidate, so a
PUT replaces them at once)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.subsidy import Candidate
from services.coupon.domain.subsidy_plans import PlanState, SubsidyPlan

PLANS = "subsidy_plans"
INDICATORS = "subsidy_indicators"

INDEXES = [Index(PLANS, [("tenant", 1), ("_id", -1)])]


def _plan(doc: Document) -> SubsidyPlan:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "tenant")}
    return SubsidyPlan.model_validate({**fields, "id": doc["_id"]})


class SubsidyPlanStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.plans = db[PLANS]
        self.indicators = db[INDICATORS]

    async def add(self, tenant: str, plan: SubsidyPlan, session: AsyncClientSession) -> None:
        doc = plan.model_dump(mode="python", exclude={"id"})
        await self.plans.insert_one({"_id": plan.id, "tenant": tenant, **doc}, session=session)

    async def get(
        self, tenant: str, plan_id: str, session: AsyncClientSession | None = None
    ) -> SubsidyPlan | None:
        doc = await self.plans.find_one({"_id": plan_id, "tenant": tenant}, session=session)
        return _plan(doc) if doc else None

    async def replace(
        self, tenant: str, plan: SubsidyPlan, was: PlanState, session: AsyncClientSession
    ) -> bool:
        """Save `plan` if it is still in the state it was read in."""
        doc = plan.model_dump(mode="python", exclude={"id"})
        result = await self.plans.replace_one(
            {"_id": plan.id, "tenant": tenant, "state": str(was)},
            {"tenant": tenant, **doc},
            session=session,
        )
        return result.matched_count == 1

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[SubsidyPlan], str | None]:
        query: dict[str, Any] = {"tenant": tenant}
        if page.after:
            query["_id"] = {"$lt": str(page.after_value("id"))}
        docs = await self.plans.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        items = [_plan(d) for d in docs]
        return items[: page.limit], next_cursor([{"id": p.id} for p in items], page.limit, "id")

    async def put_indicators(
        self,
        tenant: str,
        plan_id: str,
        candidates: list[Candidate],
        session: AsyncClientSession,
    ) -> None:
        rows = [c.model_dump() for c in candidates]
        await self.indicators.replace_one(
            {"_id": f"{tenant}:{plan_id}"},
            {"tenant": tenant, "plan_id": plan_id, "candidates": rows},
            upsert=True,
            session=session,
        )

    async def candidates(
        self, tenant: str, plan_id: str, session: AsyncClientSession | None = None
    ) -> list[Candidate]:
        doc = await self.indicators.find_one({"_id": f"{tenant}:{plan_id}"}, session=session)
        return [Candidate.model_validate(c) for c in (doc or {}).get("candidates", [])]
