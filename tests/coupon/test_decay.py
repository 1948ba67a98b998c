"""Random red packet decay, pure: the schedule's rules, and properties over any policy and
draw (never above the draw nor the batch's maximum, never below the floor, never growing
with the claim count)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.coupon.domain.batches import BatchSpec
from services.coupon.domain.decay import DecayPolicy, decayed_face_value

factors = st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=20).map(
    lambda fs: sorted(fs, reverse=True)
)


@st.composite
def policies_and_draws(draw: st.DrawFn) -> tuple[DecayPolicy, int, int, int]:
    """A policy, a batch's range [low, high] with the floor at most `low`, and a draw."""
    low = draw(st.integers(min_value=1, max_value=100_000))
    high = draw(st.integers(min_value=low, max_value=1_000_000))
    floor = draw(st.integers(min_value=1, max_value=low))
    policy = DecayPolicy(
        new_customers=draw(factors), returning_customers=draw(factors), floor=floor
    )
    return policy, low, high, draw(st.integers(min_value=low, max_value=high))


def spec(**discount: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "key": "packets",
        "name": "red packets",
        "discount": {"kind": "random", "min_amount": 100, "max_amount": 1_000, **discount},
        "claim_from": now.isoformat(),
        "claim_until": (now + timedelta(days=1)).isoformat(),
        "validity": {"days_after_claim": 3},
        "stock": 10,
        "per_customer_limit": 5,
    }


def test_the_nth_claim_takes_the_nth_factor_and_the_last_holds_after() -> None:
    policy = DecayPolicy(new_customers=[1, 0.5], returning_customers=[0.8, 0.29, 0.1], floor=5)
    assert [policy.apply(1_000, n, new_customer=True) for n in (1, 2, 3, 9)] == [
        1_000, 500, 500, 500,
    ]  # fmt: skip
    assert [policy.apply(100, n, new_customer=False) for n in (1, 2, 3)] == [80, 29, 10]
    assert policy.apply(20, 3, new_customer=False) == 5, "never below the floor"


def test_a_schedule_that_grows_or_a_factor_out_of_range_is_refused() -> None:
    with pytest.raises(ValidationError, match="must not increase"):
        DecayPolicy(new_customers=[0.5, 0.6], returning_customers=[1])
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValidationError):
            DecayPolicy(new_customers=[bad], returning_customers=[1])
    with pytest.raises(ValidationError):
        DecayPolicy(new_customers=[], returning_customers=[1])


def test_only_a_random_batch_decays_and_its_floor_is_within_its_range() -> None:
    decay = {"new_customers": [1, 0.5], "returning_customers": [0.5], "floor": 50}
    batch = BatchSpec.model_validate({**spec(), "random_decay": decay})
    assert batch.random_decay is not None
    with pytest.raises(ValidationError, match="floor must not exceed"):
        BatchSpec.model_validate({**spec(min_amount=10, max_amount=20), "random_decay": decay})
    threshold = {**spec(), "discount": {"kind": "threshold", "amount": 100, "threshold": 1_000}}
    with pytest.raises(ValidationError, match="random red packets only"):
        BatchSpec.model_validate({**threshold, "random_decay": decay})


def test_a_batch_without_a_policy_or_a_return_coupon_slot_keeps_the_draw() -> None:
    plain = BatchSpec.model_validate(spec())
    assert decayed_face_value(700, plain, 3, False) == 700
    decay = {"new_customers": [0.5], "returning_customers": [0.25]}
    decaying = BatchSpec.model_validate({**spec(), "random_decay": decay})
    assert decayed_face_value(700, decaying, "order-ref", False) == 700
    assert decayed_face_value(700, decaying, 1, True) == 350
    assert decayed_face_value(700, decaying, 1, None) == 175, "unknown history: returning"


@given(policies_and_draws(), st.integers(min_value=1, max_value=50), st.booleans())
def test_a_decayed_packet_stays_between_the_floor_and_the_draw(
    case: tuple[DecayPolicy, int, int, int], claim_number: int, new_customer: bool
) -> None:
    policy, _, high, drawn = case
    value = policy.apply(drawn, claim_number, new_customer=new_customer)
    assert policy.floor <= value <= drawn <= high


@given(policies_and_draws(), st.booleans())
def test_a_decayed_packet_never_grows_with_the_claim_count(
    case: tuple[DecayPolicy, int, int, int], new_customer: bool
) -> None:
    policy, _, _, drawn = case
    values = [policy.apply(drawn, n, new_customer=new_customer) for n in range(1, 25)]
    assert values == sorted(values, reverse=True)


@given(policies_and_draws(), st.integers(min_value=1, max_value=30))
def test_with_the_draw_itself_random_the_range_shrinks_but_never_below_the_floor(
    case: tuple[DecayPolicy, int, int, int], claim_number: int
) -> None:
    """Over many draws from [low, high], every decayed value lies in
    [max(floor, low·f), high·f] for the claim's factor f."""
    policy, low, high, _ = case
    rng = random.Random(claim_number)
    f = policy.factor(claim_number, new_customer=False)
    for _ in range(20):
        value = policy.apply(rng.randint(low, high), claim_number, new_customer=False)
        assert max(policy.floor, int(low * f) - 1) <= value <= max(policy.floor, high * f + 1e-6)
