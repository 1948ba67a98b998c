"""Budgets (预算): money a department or region may spend on subsidies in a period. Every
movement is a ledger entry, so the remaining amount is always explained:

    remaining = amount - allocated - reserved - consumed

`allocated` went to sub-budgets, `reserved` is held by approved campaigns, `consumed` was
spent on used coupons."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from services.coupon.domain.batches import ID_PATTERN

MAX_AMOUNT = 10**13  # 100 billion yuan in 分


class OwnerKind(StrEnum):
    DEPARTMENT = "department"
    REGION = "region"


class Movement(StrEnum):
    OPENED = "opened"  # the initial amount
    TOP_UP = "top_up"
    ALLOCATE = "allocate"  # to a sub-budget
    RESERVE = "reserve"  # a campaign approved
    RELEASE = "release"  # a campaign ended with less used than reserved
    CONSUME = "consume"  # a coupon used: reserved becomes consumed
    RESTORE = "restore"  # a refunded order gives its coupon back: consumed becomes reserved


class BudgetDraft(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    owner_kind: OwnerKind
    owner: str = Field(pattern=ID_PATTERN)
    amount: int = Field(ge=1, le=MAX_AMOUNT)
    starts_at: datetime
    ends_at: datetime
    #: Committed shares (percent) at which an alert is raised.
    alert_thresholds: list[int] = Field(default_factory=lambda: [80, 95], max_length=5)
    #: Split from this budget: its amount is allocated from the parent's remaining.
    parent_id: str | None = Field(None, pattern=ID_PATTERN)
    #: GMV the budget's campaigns aim for (monitoring compares what their orders achieved).
    target_gmv: int | None = Field(None, ge=1, le=MAX_AMOUNT * 1000)

    @model_validator(mode="after")
    def _period(self) -> BudgetDraft:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if any(not 1 <= t <= 100 for t in self.alert_thresholds):
            raise ValueError("alert thresholds are percentages from 1 to 100")
        return self


class Budget(BaseModel):
    id: str
    name: str
    owner_kind: OwnerKind
    owner: str
    parent_id: str | None
    amount: int
    allocated: int = 0
    reserved: int = 0
    consumed: int = 0
    remaining: int
    starts_at: datetime
    ends_at: datetime
    alert_thresholds: list[int]
    alerts_raised: list[int] = Field(default_factory=list)
    created_at: datetime
    target_gmv: int | None = None
    #: Set while the budget alert is raised (committed share at its line): no new campaign
    #: approvals. Monitoring sets both flags (domain/alerts.py).
    approvals_blocked: bool = False
    #: Set while the consumed share is at the line too: no issuing under the budget.
    issuing_blocked: bool = False


class LedgerEntry(BaseModel):
    id: str
    budget_id: str
    movement: Movement
    amount: int
    campaign_id: str | None = None
    coupon_id: str | None = None
    note: str | None = None
    at: datetime


def opened(budget_id: str, draft: BudgetDraft, *, now: datetime) -> Budget:
    return Budget(
        id=budget_id,
        name=draft.name,
        owner_kind=draft.owner_kind,
        owner=draft.owner,
        parent_id=draft.parent_id,
        amount=draft.amount,
        remaining=draft.amount,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        alert_thresholds=sorted(set(draft.alert_thresholds)),
        created_at=now,
        target_gmv=draft.target_gmv,
    )


def committed(budget: Budget) -> int:
    return budget.allocated + budget.reserved + budget.consumed


def crossed_thresholds(budget: Budget) -> list[int]:
    """Thresholds the committed share has reached that were not alerted yet."""
    share = committed(budget) * 100 / budget.amount
    return [t for t in budget.alert_thresholds if share >= t and t not in budget.alerts_raised]


def explained(budget: Budget, entries: list[LedgerEntry]) -> bool:
    """The ledger adds up to the budget's counters (used by tests and the reconcile view)."""
    total = {m: sum(e.amount for e in entries if e.movement == m) for m in Movement}
    amount = total[Movement.OPENED] + total[Movement.TOP_UP]
    reserved = (
        total[Movement.RESERVE]
        - total[Movement.RELEASE]
        - total[Movement.CONSUME]
        + total[Movement.RESTORE]
    )
    consumed = total[Movement.CONSUME] - total[Movement.RESTORE]
    return (
        amount == budget.amount
        and total[Movement.ALLOCATE] == budget.allocated
        and reserved == budget.reserved
        and consumed == budget.consumed
        and budget.remaining == amount - budget.allocated - reserved - consumed
    )
