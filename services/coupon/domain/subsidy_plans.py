"""Subsidy plans (补贴策略): a tenant's strategy for its merchants or products, the
indicators it is computed from, and its allocation checked against a budget. Pure: no I/O.

A plan draws from one budget. Its allocation is first computed as the formula asks
(`requested`); if that total is above the budget's remaining amount, the domain's fitted
allocation (the part above the floor scaled down by one factor for everyone) is offered
beside it. Applying a plan reserves its total from the budget (draft → applied);
releasing gives the reservation back (applied → released)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from servicekit.errors import Conflict, InvalidInput
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.subsidy import Allocation, Candidate, SubsidyPolicy, plan

MAX_CANDIDATES = 5_000


class SubjectKind(StrEnum):
    MERCHANT = "merchant"
    PRODUCT = "product"


class SubsidyPlanDraft(SubsidyPolicy):
    """The policy (floor a, ceiling b, shape t, weights) with what it is for."""

    name: str = Field(min_length=1, max_length=100)
    budget_id: str = Field(pattern=ID_PATTERN)
    subject_kind: SubjectKind

    def policy(self) -> SubsidyPolicy:
        return SubsidyPolicy(
            floor=self.floor, ceiling=self.ceiling, shape=self.shape, weights=self.weights
        )


class Indicators(BaseModel):
    """Every candidate's raw indicators (PUT as a whole): conversion and repurchase rates
    in [0, 1], average order value in minor units."""

    candidates: list[Candidate] = Field(max_length=MAX_CANDIDATES)


def check_distinct(candidates: Sequence[Candidate]) -> None:
    seen: set[str] = set()
    for i, c in enumerate(candidates):
        if c.candidate_id in seen:
            raise InvalidInput(
                f"candidate {c.candidate_id} is listed twice",
                field=f"candidates.{i}.candidate_id",
                code="duplicate_candidate",
            )
        seen.add(c.candidate_id)


class PlanState(StrEnum):
    DRAFT = "draft"
    APPLIED = "applied"
    RELEASED = "released"


class Applied(BaseModel):
    amount: int
    #: 1 when the requested allocation fitted; below 1 when the fitted one was applied.
    scale: float
    by: str
    at: datetime
    subsidies: dict[str, int]


class SubsidyPlan(SubsidyPlanDraft):
    id: str
    state: PlanState = PlanState.DRAFT
    candidates: int = 0
    created_by: str
    created_at: datetime
    applied: Applied | None = None
    released_by: str | None = None
    released_at: datetime | None = None


class BudgetCheck(BaseModel):
    """A plan's allocation against the budget's remaining amount."""

    budget_id: str
    remaining: int
    #: The formula's subsidies as they are, unscaled.
    requested: Allocation
    within_budget: bool
    #: When over budget: the same order and bounds, scaled to the remaining amount (None
    #: when even every candidate's floor together does not fit).
    fitted: Allocation | None = None
    note: str


def checked(
    candidates: Sequence[Candidate], policy: SubsidyPolicy, budget_id: str, remaining: int
) -> BudgetCheck:
    unlimited = policy.ceiling * max(1, len(candidates))
    requested = plan(candidates, policy, unlimited)
    if requested.total <= remaining:
        note = f"the total {requested.total} is within the remaining {remaining}"
        requested = requested.model_copy(update={"budget": remaining})
        return BudgetCheck(
            budget_id=budget_id,
            remaining=remaining,
            requested=requested,
            within_budget=True,
            note=note,
        )
    floors = policy.floor * len(candidates)
    over = f"the total {requested.total} is over the remaining {remaining}"
    if floors > remaining:
        note = f"{over}, and so is every candidate's floor together ({floors}): nothing fits"
        fitted = None
    else:
        fitted = plan(candidates, policy, remaining)
        note = f"{over}: fitted, the part above the floor is scaled by {fitted.scale:.4f}"
    return BudgetCheck(
        budget_id=budget_id,
        remaining=remaining,
        requested=requested.model_copy(update={"budget": remaining}),
        within_budget=False,
        fitted=fitted,
        note=note,
    )


def to_apply(check: BudgetCheck, *, accept_fitted: bool) -> Allocation:
    """The allocation applying reserves, or Conflict saying why none can be."""
    if not check.requested.lines:
        raise Conflict("the plan has no indicators to allocate by", code="no_indicators")
    if check.within_budget:
        return check.requested
    if check.fitted is None:
        raise Conflict(check.note, code="budget_below_floors", remaining=check.remaining)
    if not accept_fitted:
        raise Conflict(
            f"{check.note}; apply with accept_fitted to reserve the fitted total",
            code="over_budget",
            remaining=check.remaining,
            total=check.requested.total,
            fitted_total=check.fitted.total,
        )
    return check.fitted


def step(current: SubsidyPlan, target: PlanState) -> None:
    """draft → applied → released; anything else is a Conflict."""
    allowed = {PlanState.APPLIED: PlanState.DRAFT, PlanState.RELEASED: PlanState.APPLIED}
    if allowed.get(target) != current.state:
        raise Conflict(
            f"a plan that is {current.state} cannot become {target}",
            code="plan_state",
            state=str(current.state),
        )
