"""Compensation rules: the policy's range over its batches, choosing the batch, every review
threshold, periods in the tenant's zone, and review steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from servicekit.errors import Conflict, Forbidden, InvalidInput
from services.coupon.domain.batches import BatchSpec, Discount, Validity
from services.coupon.domain.compensation import (
    CompensationRequest,
    CompensationState,
    Exceeded,
    Tally,
    approved,
    assess,
    choose_batch,
    rejected,
    requested,
    room,
    same_request,
)
from services.coupon.domain.compensation_policy import (
    CompensationPolicy,
    Period,
    PeriodLimit,
    check_policy_batches,
    period_key,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DISCOUNTS = {
    "b5": Discount(kind="threshold", amount=500, threshold=5_000),
    "b10": Discount(kind="direct", amount=1_000),
    "lucky": Discount(kind="random", min_amount=200, max_amount=800),
    "pct": Discount(kind="percent", pay_percent=90, cap=1_500),
    "ret": Discount(kind="return", amount=500, threshold=5_000, follow_up_batch="x"),
}
POLICY = CompensationPolicy(
    batch_ids=["b5", "b10", "lucky"],
    min_value=200,
    max_value=1_000,
    review_above=800,
    period_limits=[
        PeriodLimit(period=Period.DAY, max_count=2),
        PeriodLimit(period=Period.MONTH, max_amount=3_000),
    ],
)


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def specs(claim_until: datetime = NOW - timedelta(days=1)) -> dict[str, BatchSpec]:
    """The discounts as batches whose claim window is over (grant only)."""
    return {
        key: BatchSpec(
            key=key,
            name=key,
            discount=discount,
            claim_from=claim_until - timedelta(days=1),
            claim_until=claim_until,
            validity=Validity(days_after_claim=7),
            stock=100,
        )
        for key, discount in DISCOUNTS.items()
    }


def ask(**fields: object) -> CompensationRequest:
    base: dict[str, object] = {"customer_id": "c1", "reason": "late", "reference": "r1"}
    return CompensationRequest.model_validate({**base, **fields})


def test_periods_are_the_tenants_day_week_and_month() -> None:
    at = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # Tuesday 1 December 01:00 in Shanghai
    assert period_key(Period.DAY, at, SHANGHAI) == "2026-12-01"
    assert period_key(Period.WEEK, at, SHANGHAI) == "2026-W49"
    assert period_key(Period.MONTH, at, SHANGHAI) == "2026-12"
    assert period_key(Period.MONTH, at, UTC) == "2026-11"


def test_the_policys_batches_must_lie_in_its_range() -> None:
    check_policy_batches(POLICY, specs(), NOW)
    with pytest.raises(InvalidInput, match="outside the range") as caught:
        check_policy_batches(POLICY.model_copy(update={"batch_ids": ["b5", "pct"]}), specs(), NOW)
    assert caught.value.extra["errors"][0]["field"] == "batch_ids.1"
    with pytest.raises(InvalidInput, match="return batch"):
        check_policy_batches(POLICY.model_copy(update={"batch_ids": ["ret"]}), specs(), NOW)
    with pytest.raises(InvalidInput, match="no batch"):
        check_policy_batches(POLICY.model_copy(update={"batch_ids": ["gone"]}), specs(), NOW)
    narrow = POLICY.model_copy(update={"min_value": 300})
    with pytest.raises(InvalidInput, match="200-800"):
        check_policy_batches(narrow, specs(), NOW)  # the random batch can draw below 300
    with pytest.raises(InvalidInput, match="can still claim") as open_window:
        check_policy_batches(POLICY, specs(claim_until=NOW + timedelta(hours=1)), NOW)
    assert open_window.value.code == "batch_self_claimable"


def test_a_bad_policy_is_refused_by_field() -> None:
    with pytest.raises(ValidationError, match="max_value is below"):
        CompensationPolicy(batch_ids=["b5"], min_value=900, max_value=800)
    with pytest.raises(ValidationError, match="listed twice"):
        CompensationPolicy(batch_ids=["b5", "b5"], min_value=1, max_value=800)
    with pytest.raises(ValidationError, match="one limit per period"):
        CompensationPolicy(
            batch_ids=["b5"],
            min_value=1,
            max_value=800,
            period_limits=[
                PeriodLimit(period=Period.DAY, max_count=1),
                PeriodLimit(period=Period.DAY, max_amount=1),
            ],
        )
    with pytest.raises(ValidationError, match="max_count, max_amount or both"):
        PeriodLimit(period=Period.WEEK)


def test_a_request_names_a_value_or_a_batch_and_gets_the_policys_batch() -> None:
    assert choose_batch(POLICY, ask(value=500), DISCOUNTS) == ("b5", 500)
    assert choose_batch(POLICY, ask(value=1_000), DISCOUNTS) == ("b10", 1_000)
    assert choose_batch(POLICY, ask(batch_id="lucky"), DISCOUNTS) == ("lucky", 800)
    with pytest.raises(InvalidInput, match=r"offered are \[500, 1000\]"):
        choose_batch(POLICY, ask(value=700), DISCOUNTS)
    with pytest.raises(InvalidInput, match="compensation values lie in 200-1000"):
        choose_batch(POLICY, ask(value=5_000), DISCOUNTS)
    with pytest.raises(InvalidInput, match="not one the compensation policy lists"):
        choose_batch(POLICY, ask(batch_id="pct"), DISCOUNTS)
    with pytest.raises(ValidationError, match="exactly one"):
        ask(value=500, batch_id="b5")
    with pytest.raises(ValidationError, match="exactly one"):
        ask()


def test_within_every_threshold_nothing_is_exceeded() -> None:
    tallies = {Period.DAY: Tally(count=1, amount=500), Period.MONTH: Tally(count=4, amount=2_000)}
    assert assess(POLICY, 800, tallies, order_seen=False) == []
    assert assess(POLICY, 500, {}, order_seen=False) == []


def test_each_threshold_is_named_with_its_limit_and_what_was_given() -> None:
    day_full = {Period.DAY: Tally(count=2, amount=1_000)}
    assert assess(POLICY, 500, day_full, order_seen=False) == [
        Exceeded(threshold="period_count", period=Period.DAY, limit=2, current=2)
    ]
    month_full = {Period.MONTH: Tally(count=3, amount=2_600)}
    assert assess(POLICY, 500, month_full, order_seen=False) == [
        Exceeded(threshold="period_amount", period=Period.MONTH, limit=3_000, current=2_600)
    ]
    assert assess(POLICY, 1_000, {}, order_seen=False) == [
        Exceeded(threshold="single_value", limit=800)
    ]
    assert assess(POLICY, 500, {}, order_seen=True) == [Exceeded(threshold="same_order")]
    every = assess(POLICY, 1_000, {**day_full, **month_full}, order_seen=True)
    assert [e.threshold for e in every] == [
        "period_count",
        "period_amount",
        "single_value",
        "same_order",
    ]


@given(
    st.integers(0, 10),
    st.integers(0, 5_000),
    st.integers(1, 1_000),
    st.integers(1, 10),
    st.integers(1, 5_000),
)
def test_the_store_guard_admits_exactly_what_assess_admits(
    count: int, amount: int, value: int, max_count: int, max_amount: int
) -> None:
    """The conditional update's filter (`room`) and the pure rule agree on every tally."""
    limit = PeriodLimit(period=Period.DAY, max_count=max_count, max_amount=max_amount)
    policy = CompensationPolicy(
        batch_ids=["b"], min_value=1, max_value=1_000, period_limits=[limit]
    )
    fits = not assess(policy, value, {Period.DAY: Tally(count=count, amount=amount)}, False)
    most_count, most_amount = room(limit, value)
    assert fits == (count <= (most_count or 0) and amount <= (most_amount or 0))


def test_review_steps_record_who_and_when_and_refuse_the_wrong_state_or_reviewer() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    held = requested(
        "cmpn_1",
        ask(value=1_000),
        "b10",
        1_000,
        [Exceeded(threshold="single_value", limit=800)],
        by="agent",
        now=now,
    )
    assert held.state == CompensationState.PENDING_REVIEW
    ok = approved(held, by="boss", now=now, note="checked")
    assert (ok.state, ok.reviewed_by, ok.reviewed_at) == (CompensationState.ISSUING, "boss", now)
    no = rejected(held, by="boss", now=now, reason="abuse")
    assert (no.state, no.review_note) == (CompensationState.REJECTED, "abuse")
    with pytest.raises(Conflict, match="cannot be approved"):
        approved(no, by="boss", now=now, note=None)
    with pytest.raises(Forbidden, match="their own request"):
        rejected(held, by="agent", now=now, reason="self")
    issued_now = requested("cmpn_2", ask(value=500), "b5", 500, [], by="agent", now=now)
    assert issued_now.state == CompensationState.ISSUING


def test_a_repeated_reference_must_ask_for_the_same() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    first = requested("cmpn_1", ask(value=500), "b5", 500, [], by="agent", now=now)
    assert same_request(first, ask(value=500))
    assert same_request(first, ask(batch_id="b5"))
    assert not same_request(first, ask(value=500, customer_id="c2"))
    assert not same_request(first, ask(batch_id="b10"))
    assert not same_request(first, ask(value=1_000))
