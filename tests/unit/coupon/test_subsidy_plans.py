"""A subsidy plan's allocation against its budget: within, fitted, or nothing fits; what
applying reserves; the plan's states."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.errors import Conflict, InvalidInput
from services.coupon.domain.subsidy import Candidate, SubsidyPolicy
from services.coupon.domain.subsidy_plans import (
    PlanState,
    SubsidyPlan,
    check_distinct,
    checked,
    step,
    to_apply,
)

POLICY = SubsidyPolicy(floor=100, ceiling=1_100, shape=2.0)
SHOPS = [
    Candidate(candidate_id="a", conversion=0.3, repurchase=0.5, average_order_value=20_000),
    Candidate(candidate_id="b", conversion=0.1, repurchase=0.1, average_order_value=10_000),
]


def test_within_budget_the_requested_allocation_is_applied() -> None:
    check = checked(SHOPS, POLICY, "bud_1", 5_000)
    assert check.within_budget and check.fitted is None
    assert check.requested.total == 1_200 and check.requested.budget == 5_000
    assert to_apply(check, accept_fitted=False) == check.requested


def test_over_budget_the_fitted_allocation_is_offered_and_applied_only_when_accepted() -> None:
    check = checked(SHOPS, POLICY, "bud_1", 700)
    assert not check.within_budget and check.requested.total == 1_200
    assert check.fitted is not None and check.fitted.total <= 700
    with pytest.raises(Conflict, match="accept_fitted") as caught:
        to_apply(check, accept_fitted=False)
    assert caught.value.code == "over_budget"
    assert to_apply(check, accept_fitted=True) == check.fitted


def test_below_the_floors_nothing_fits_and_nothing_applies() -> None:
    check = checked(SHOPS, POLICY, "bud_1", 150)
    assert check.fitted is None and "nothing fits" in check.note
    with pytest.raises(Conflict) as caught:
        to_apply(check, accept_fitted=True)
    assert caught.value.code == "budget_below_floors"
    with pytest.raises(Conflict) as empty:
        to_apply(checked([], POLICY, "bud_1", 150), accept_fitted=True)
    assert empty.value.code == "no_indicators"


def test_a_candidate_listed_twice_is_named_by_its_place() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_distinct([*SHOPS, SHOPS[0]])
    assert caught.value.extra["errors"][0]["field"] == "candidates.2.candidate_id"


def test_a_plan_goes_draft_applied_released_only() -> None:
    plan = SubsidyPlan(
        id="spl_1",
        name="q4",
        budget_id="bud_1",
        subject_kind="merchant",
        floor=0,
        ceiling=10,
        shape=1.0,
        created_by="x",
        created_at=datetime(2026, 11, 24, tzinfo=UTC),
    )
    step(plan, PlanState.APPLIED)
    with pytest.raises(Conflict, match="draft cannot become released"):
        step(plan, PlanState.RELEASED)
    applied = plan.model_copy(update={"state": PlanState.APPLIED})
    step(applied, PlanState.RELEASED)
    with pytest.raises(Conflict):
        step(applied, PlanState.APPLIED)


rates = st.floats(min_value=0, max_value=1, allow_nan=False)
shops = st.lists(
    st.builds(
        Candidate,
        candidate_id=st.uuids().map(str),
        conversion=rates,
        repurchase=rates,
        average_order_value=st.integers(min_value=0, max_value=10**7),
    ),
    min_size=1,
    max_size=20,
    unique_by=lambda c: c.candidate_id,
)


@given(shops, st.integers(0, 1_000), st.integers(0, 10_000), st.integers(0, 50_000))
def test_what_applying_reserves_never_exceeds_the_remaining_budget(
    candidates: list[Candidate], floor: int, extra: int, remaining: int
) -> None:
    policy = SubsidyPolicy(floor=floor, ceiling=floor + extra, shape=1.5)
    check = checked(candidates, policy, "bud_1", remaining)
    assert check.within_budget == (check.requested.total <= remaining)
    try:
        chosen = to_apply(check, accept_fitted=True)
    except Conflict as refused:
        assert refused.code == "budget_below_floors"
        assert floor * len(candidates) > remaining
        return
    assert chosen.total <= remaining
    assert {line.candidate_id for line in chosen.lines} == {c.candidate_id for c in candidates}
