"""Subsidy strategy routes (补贴策略): plans for merchants or products, their indicators,
the computed allocation with every input shown and checked against the budget, and
applying it (a reservation in the budget's ledger)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel

from servicekit.context import ActorDep, TenantDep
from servicekit.errors import Forbidden
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.coupon.api.deps import Id
from services.coupon.domain.subsidy import Candidate
from services.coupon.domain.subsidy_plans import (
    BudgetCheck,
    Indicators,
    SubsidyPlan,
    SubsidyPlanDraft,
)
from services.coupon.service.subsidies import SubsidyPlanService
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.subsidies import SubsidyPlanStore

router = APIRouter(tags=["subsidy strategy"])
#: Who may reserve budget for a plan (as for approving a campaign).
APPROVERS = ("budget_approver", "admin")


async def _service(runtime: RuntimeDep) -> SubsidyPlanService:
    return SubsidyPlanService(runtime.uow, SubsidyPlanStore(runtime.db), BudgetStore(runtime.db))


SubsidyPlansDep = Annotated[SubsidyPlanService, Depends(_service)]


class AllocationView(BaseModel):
    plan: SubsidyPlan
    #: Each candidate's raw indicators (`inputs`), `normalised` values, score Y and
    #: subsidy X, as requested and (over budget) as fitted.
    check: BudgetCheck


class Apply(BaseModel):
    #: Over budget, reserve the fitted (scaled) allocation instead of refusing.
    accept_fitted: bool = False


@router.post("/subsidy-plans", status_code=status.HTTP_201_CREATED)
async def create_plan(
    body: SubsidyPlanDraft, tenant: TenantDep, actor: ActorDep, plans: SubsidyPlansDep
) -> SubsidyPlan:
    """A plan: X = floor + Y^shape · (ceiling - floor) (the article's a, b, t), Y the
    weighted mean of the normalised indicators (`weights` over conversion, repurchase,
    average_order_value), for merchants or products, drawing from `budget_id`."""
    return await plans.create(tenant, body, actor)


@router.get("/subsidy-plans")
async def list_plans(
    tenant: TenantDep, plans: SubsidyPlansDep, page: PageRequestDep
) -> Page[SubsidyPlan]:
    items, cursor = await plans.page(tenant, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/subsidy-plans/{plan_id}")
async def get_plan(plan_id: Id, tenant: TenantDep, plans: SubsidyPlansDep) -> SubsidyPlan:
    return await plans.get(tenant, plan_id)


@router.put("/subsidy-plans/{plan_id}/indicators")
async def put_indicators(
    plan_id: Id, body: Indicators, tenant: TenantDep, plans: SubsidyPlansDep
) -> SubsidyPlan:
    """Replace every candidate's raw indicators (a draft plan only; 409 `plan_state`)."""
    return await plans.put_indicators(tenant, plan_id, body.candidates)


@router.get("/subsidy-plans/{plan_id}/indicators")
async def get_indicators(plan_id: Id, tenant: TenantDep, plans: SubsidyPlansDep) -> list[Candidate]:
    return await plans.candidates(tenant, plan_id)


@router.get("/subsidy-plans/{plan_id}/allocation")
async def get_allocation(plan_id: Id, tenant: TenantDep, plans: SubsidyPlansDep) -> AllocationView:
    """Every candidate's subsidy with its inputs, and the total against the budget's
    remaining amount: over it, `within_budget` is false and `fitted` shows the same
    allocation scaled to fit (or none, when even the floors together do not)."""
    plan, check = await plans.allocation(tenant, plan_id)
    return AllocationView(plan=plan, check=check)


@router.post("/subsidy-plans/{plan_id}/apply")
async def apply_plan(
    plan_id: Id,
    tenant: TenantDep,
    actor: ActorDep,
    plans: SubsidyPlansDep,
    body: Apply | None = None,
) -> SubsidyPlan:
    """Reserve the allocation's total from the budget (roles budget_approver or admin):
    a `reserve` entry in its ledger. Over budget: 409 `over_budget` unless
    `accept_fitted`; 409 `budget_below_floors`, `budget_exceeded` (raced), `plan_state`."""
    _approver(actor.has_role(*APPROVERS))
    accept = body.accept_fitted if body else False
    return await plans.apply(tenant, plan_id, actor, accept_fitted=accept)


@router.post("/subsidy-plans/{plan_id}/release")
async def release_plan(
    plan_id: Id, tenant: TenantDep, actor: ActorDep, plans: SubsidyPlansDep
) -> SubsidyPlan:
    """Give an applied plan's reservation back to the budget (a `release` ledger entry)."""
    _approver(actor.has_role(*APPROVERS))
    return await plans.release(tenant, plan_id, actor)


def _approver(allowed: bool) -> None:
    if not allowed:
        raise Forbidden(
            f"only {' or '.join(APPROVERS)} may reserve or release budget", code="not_approver"
        )
