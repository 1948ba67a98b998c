"""Subsidy plan use cases: create, put indicators, show the allocation against the budget,
apply (reserve the total from the budget through its ledger) and release.

Applying is one transaction: the plan moves draft → applied only if it is still a draft,
and the reservation is the budget's guarded update (`remaining >= amount`), so two
applications, or an application racing a campaign's approval, cannot overspend."""

from __future__ import annotations

import uuid

from servicekit.clock import utcnow
from servicekit.context import Actor
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.domain import subsidy_plans as rules
from services.coupon.domain.budgets import Budget, Movement
from services.coupon.domain.subsidy import Candidate
from services.coupon.domain.subsidy_plans import (
    Applied,
    BudgetCheck,
    PlanState,
    SubsidyPlan,
    SubsidyPlanDraft,
)
from services.coupon.service.budgets import raise_alerts
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.subsidies import SubsidyPlanStore


class SubsidyPlanService:
    def __init__(self, uow: UnitOfWork, plans: SubsidyPlanStore, budgets: BudgetStore) -> None:
        self.uow = uow
        self.plans = plans
        self.budgets = budgets

    async def create(self, tenant: str, draft: SubsidyPlanDraft, actor: Actor) -> SubsidyPlan:
        now = utcnow()
        plan_id = f"spl_{now:%Y%m%d%H%M%S%f}{uuid.uuid4().hex[:6]}"  # newest sorts first
        created = SubsidyPlan(**draft.model_dump(), id=plan_id, created_by=actor.id, created_at=now)

        async def work(tx: Tx) -> SubsidyPlan:
            if await self.budgets.get(tenant, draft.budget_id, tx.session) is None:
                raise InvalidInput("no such budget", field="budget_id", code="budget_not_found")
            await self.plans.add(tenant, created, tx.session)
            return created

        return await self.uow.run(work)

    async def get(self, tenant: str, plan_id: str) -> SubsidyPlan:
        found = await self.plans.get(tenant, plan_id)
        if found is None:
            raise NotFound(f"no subsidy plan {plan_id}", code="subsidy_plan_not_found")
        return found

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[SubsidyPlan], str | None]:
        return await self.plans.page(tenant, page)

    async def put_indicators(
        self, tenant: str, plan_id: str, candidates: list[Candidate]
    ) -> SubsidyPlan:
        """Replace the plan's candidates; a draft only (an applied plan's money is fixed)."""
        rules.check_distinct(candidates)

        async def work(tx: Tx) -> SubsidyPlan:
            current = await self._get(tenant, plan_id, tx)
            if current.state != PlanState.DRAFT:
                raise Conflict(
                    f"a plan that is {current.state} keeps the indicators it was applied with",
                    code="plan_state",
                    state=str(current.state),
                )
            await self.plans.put_indicators(tenant, plan_id, candidates, tx.session)
            updated = current.model_copy(update={"candidates": len(candidates)})
            if not await self.plans.replace(tenant, updated, PlanState.DRAFT, tx.session):
                raise Conflict("the plan changed meanwhile; retry", code="plan_state")
            return updated

        return await self.uow.run(work)

    async def candidates(self, tenant: str, plan_id: str) -> list[Candidate]:
        await self.get(tenant, plan_id)
        return await self.plans.candidates(tenant, plan_id)

    async def allocation(self, tenant: str, plan_id: str) -> tuple[SubsidyPlan, BudgetCheck]:
        found = await self.get(tenant, plan_id)
        budget = await self._budget(tenant, found.budget_id)
        candidates = await self.plans.candidates(tenant, plan_id)
        # An applied plan is checked against what the budget holds for it too.
        held = found.applied.amount if found.applied and found.state == PlanState.APPLIED else 0
        return found, rules.checked(candidates, found.policy(), budget.id, budget.remaining + held)

    async def apply(
        self, tenant: str, plan_id: str, actor: Actor, *, accept_fitted: bool
    ) -> SubsidyPlan:
        async def work(tx: Tx) -> SubsidyPlan:
            current = await self._get(tenant, plan_id, tx)
            rules.step(current, PlanState.APPLIED)
            budget = await self._budget(tenant, current.budget_id, tx)
            now = utcnow()
            if budget.ends_at <= now:
                raise Conflict("the plan's budget period is over", code="budget_expired")
            candidates = await self.plans.candidates(tenant, plan_id, tx.session)
            check = rules.checked(candidates, current.policy(), budget.id, budget.remaining)
            chosen = rules.to_apply(check, accept_fitted=accept_fitted)
            if chosen.total > 0:
                await self._reserve(tx, tenant, current, chosen.total, budget)
            applied = Applied(
                amount=chosen.total,
                scale=chosen.scale,
                by=actor.id,
                at=now,
                subsidies={line.candidate_id: line.subsidy for line in chosen.lines},
            )
            moved = current.model_copy(update={"state": PlanState.APPLIED, "applied": applied})
            await self._save(tx, tenant, moved, current.state)
            return moved

        return await self.uow.run(work)

    async def release(self, tenant: str, plan_id: str, actor: Actor) -> SubsidyPlan:
        async def work(tx: Tx) -> SubsidyPlan:
            current = await self._get(tenant, plan_id, tx)
            rules.step(current, PlanState.RELEASED)
            amount = current.applied.amount if current.applied else 0
            if amount > 0:
                released = await self.budgets.move(
                    tenant, current.budget_id, Movement.RELEASE, amount, tx.session,
                    note=f"subsidy plan {current.id}",
                )  # fmt: skip
                if released is None:
                    raise Conflict("the budget no longer holds the reservation", code="conflict")
            moved = current.model_copy(
                update={
                    "state": PlanState.RELEASED,
                    "released_by": actor.id,
                    "released_at": utcnow(),
                }
            )
            await self._save(tx, tenant, moved, current.state)
            return moved

        return await self.uow.run(work)

    async def _reserve(
        self, tx: Tx, tenant: str, current: SubsidyPlan, amount: int, budget: Budget
    ) -> None:
        reserved = await self.budgets.move(
            tenant, budget.id, Movement.RESERVE, amount, tx.session,
            note=f"subsidy plan {current.id}",
        )  # fmt: skip
        if reserved is None:
            raise Conflict(
                f"the budget has {budget.remaining} remaining, less than {amount}",
                code="budget_exceeded",
                remaining=budget.remaining,
            )
        await raise_alerts(tx, tenant, self.budgets, reserved)

    async def _get(self, tenant: str, plan_id: str, tx: Tx) -> SubsidyPlan:
        found = await self.plans.get(tenant, plan_id, tx.session)
        if found is None:
            raise NotFound(f"no subsidy plan {plan_id}", code="subsidy_plan_not_found")
        return found

    async def _budget(self, tenant: str, budget_id: str, tx: Tx | None = None) -> Budget:
        budget = await self.budgets.get(tenant, budget_id, tx.session if tx else None)
        if budget is None:
            raise NotFound(f"no budget {budget_id}", code="budget_not_found")
        return budget

    async def _save(self, tx: Tx, tenant: str, moved: SubsidyPlan, was: PlanState) -> None:
        if not await self.plans.replace(tenant, moved, was, tx.session):
            raise Conflict("the plan changed meanwhile; retry", code="plan_state")
