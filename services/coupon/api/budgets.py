"""Budget routes (预算管控): open or split a budget, top it up, read it with its ledger."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from servicekit.context import TenantDep
from servicekit.pagination import Page, PageRequestDep
from services.coupon.api.alerts import SignalsDep
from services.coupon.api.deps import BudgetsDep, Id
from services.coupon.domain.budgets import MAX_AMOUNT, Budget, BudgetDraft, LedgerEntry, explained

router = APIRouter(tags=["budgets"])


class TopUp(BaseModel):
    amount: int = Field(ge=1, le=MAX_AMOUNT)
    note: str | None = Field(None, max_length=200)


class Ledger(BaseModel):
    budget: Budget
    entries: list[LedgerEntry]
    #: The entries add up to the budget's counters.
    explained: bool


@router.post("/budgets", status_code=status.HTTP_201_CREATED)
async def open_budget(
    body: BudgetDraft, tenant: TenantDep, budgets: BudgetsDep, signals: SignalsDep
) -> Budget:
    """Open a budget for a department or region and period (minor units, 分). With
    `parent_id` it is split from that budget: its amount is allocated from the parent's
    remaining (409 `budget_exceeded` when the parent has less)."""
    opened = await budgets.open(tenant, body)
    if opened.parent_id is not None:  # the parent's alert is evaluated at once
        signals.budget(tenant, opened.parent_id)
    return opened


@router.get("/budgets")
async def list_budgets(
    tenant: TenantDep, budgets: BudgetsDep, page: PageRequestDep
) -> Page[Budget]:
    items, cursor = await budgets.page(tenant, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/budgets/{budget_id}")
async def get_budget(budget_id: Id, tenant: TenantDep, budgets: BudgetsDep) -> Budget:
    """Amount, allocated to sub-budgets, reserved by campaigns, consumed, remaining."""
    return await budgets.get(tenant, budget_id)


@router.post("/budgets/{budget_id}/top-ups")
async def top_up(
    budget_id: Id, body: TopUp, tenant: TenantDep, budgets: BudgetsDep, signals: SignalsDep
) -> Budget:
    """Add to the budget's amount. A top-up that lifts the remaining above the alert line
    resolves the budget alert at once: approvals (and issuing, if it was blocked) resume.
    One that lifts only `amount - consumed` above the line lets issuing resume while new
    approvals stay blocked."""
    topped = await budgets.top_up(tenant, budget_id, body.amount, body.note)
    signals.budget(tenant, budget_id)
    return topped


@router.get("/budgets/{budget_id}/ledger")
async def get_ledger(budget_id: Id, tenant: TenantDep, budgets: BudgetsDep) -> Ledger:
    """Every movement (opened, top-up, allocate, reserve, release, consume, restore) in order."""
    budget, entries = await budgets.ledger(tenant, budget_id)
    return Ledger(budget=budget, entries=entries, explained=explained(budget, entries))
