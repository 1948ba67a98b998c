"""Property tests: over random rules and random populations, the audience engine's members are
exactly the customers the reference evaluator (`matches`) accepts, also after upserts and
removals, and with segment conditions answered from a map of segment rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.tagging.audience import AudienceEngine, TenantAudience
from services.tagging.domain.rules.ast import (
    All,
    Any,
    Node,
    Not,
    SegmentCondition,
    all_of,
    any_of,
    attr,
    negate,
)
from services.tagging.domain.rules.evaluate import matches
from services.tagging.domain.rules.facts import CustomerFacts
from tests.unit.tagging.factories import NOW
from tests.unit.tagging.test_rule_properties import customers, every_leaf, moments, rules

PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: s3 is never defined: a reference to it has no members.
MISSING_SEGMENT = "s3"


def numbered(drawn: list[CustomerFacts]) -> list[CustomerFacts]:
    return [c.model_copy(update={"customer_id": f"cus_{i:02d}"}) for i, c in enumerate(drawn)]


people = st.lists(customers(), max_size=8).map(numbered)


def retarget(rule: Node, allowed: frozenset[str]) -> Node:
    """`rule` with references to segments outside `allowed` pointed at the undefined one, so
    generated segment rules never form a cycle."""
    if isinstance(rule, All):
        return all_of(*(retarget(child, allowed) for child in rule.children))
    if isinstance(rule, Any):
        return any_of(*(retarget(child, allowed) for child in rule.children))
    if isinstance(rule, Not):
        return negate(retarget(rule.child, allowed))
    if isinstance(rule, SegmentCondition) and rule.segment_id not in allowed:
        return rule.model_copy(update={"segment_id": MISSING_SEGMENT})
    return rule


@st.composite
def segment_rules(draw: st.DrawFn) -> dict[str, Node]:
    """s1 refers to no segment, s2 may refer to s1; s3 stays undefined."""
    return {
        "s1": retarget(draw(rules), frozenset()),
        "s2": retarget(draw(rules), frozenset({"s1"})),
    }


def reference_members(
    rule: Node, population: Mapping[str, CustomerFacts], now: datetime, segments: dict[str, Node]
) -> list[str]:
    members = []
    for customer_id, facts in population.items():
        memberships: dict[str, bool] = {}
        for segment_id, segment_rule in segments.items():  # in dependency order
            memberships[segment_id] = matches(segment_rule, facts, now, memberships)
        if matches(rule, facts, now, memberships):
            members.append(customer_id)
    return sorted(members)


def assert_agrees(
    audience: TenantAudience,
    rule: Node,
    population: Mapping[str, CustomerFacts],
    now: datetime,
    segments: dict[str, Node],
) -> None:
    expected = reference_members(rule, population, now, segments)
    found = audience.evaluate(rule, now, segments)
    assert found.customer_ids() == expected, rule
    assert found.count == len(expected)
    assert all(customer_id in found for customer_id in expected)
    assert not any(customer_id in found for customer_id in population.keys() - set(expected))


def loaded(population: list[CustomerFacts]) -> TenantAudience:
    audience = AudienceEngine().tenant("t")
    audience.upsert_many(population)
    return audience


@PROPERTIES
@given(every_leaf, people, moments, segment_rules())
def test_each_condition_selects_the_customers_the_reference_evaluator_accepts(
    conditions: tuple[Node, ...],
    population: list[CustomerFacts],
    now: datetime,
    segments: dict[str, Node],
) -> None:
    audience = loaded(population)
    by_id = {c.customer_id: c for c in population}
    for rule in conditions:
        assert_agrees(audience, rule, by_id, now, segments)


@PROPERTIES
@given(rules, people, moments, segment_rules())
def test_a_rule_selects_the_customers_the_reference_evaluator_accepts(
    rule: Node, population: list[CustomerFacts], now: datetime, segments: dict[str, Node]
) -> None:
    audience = loaded(population)
    assert_agrees(audience, rule, {c.customer_id: c for c in population}, now, segments)


@PROPERTIES
@given(
    rules,
    people,
    st.lists(customers(), max_size=6),
    st.lists(st.integers(min_value=0, max_value=9), max_size=4),
    moments,
    segment_rules(),
)
def test_answers_follow_upserts_and_removals(
    rule: Node,
    population: list[CustomerFacts],
    changes: list[CustomerFacts],
    removals: list[int],
    now: datetime,
    segments: dict[str, Node],
) -> None:
    audience = loaded(population)
    by_id = {c.customer_id: c for c in population}
    assert_agrees(audience, rule, by_id, now, segments)
    # Changes replace existing customers and add new ones (ids overlap the population's);
    # removals take some away, and a removed id may come back.
    for index, change in enumerate(changes):
        facts = change.model_copy(update={"customer_id": f"cus_{(index * 3) % 10:02d}"})
        audience.upsert(facts)
        by_id[facts.customer_id] = facts
        if index < len(removals):
            gone = f"cus_{removals[index]:02d}"
            audience.remove(gone)
            by_id.pop(gone, None)
    assert len(audience) == len(by_id)
    assert_agrees(audience, rule, by_id, now, segments)


# Money past 2**53: float64 skips integers there, so thresholds and values one apart must
# still compare as the reference evaluator compares Python ints.
near_big = st.integers(min_value=2**53 - 3, max_value=2**53 + 3)
MONEY_FIELDS = ("total_amount", "net_amount")
ORDERED_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")


def money_rules(bound: int | float, other: int) -> list[Node]:
    """Every ordered operator on both money fields at `bound`, and a range up to `other`."""
    low, high = sorted([bound, other])
    return [
        *(attr(field, op, bound) for field in MONEY_FIELDS for op in ORDERED_OPS),
        *(attr(field, "between", [low, high]) for field in MONEY_FIELDS),
    ]


rich = st.builds(
    lambda facts, total, refunded: facts.model_copy(
        update={
            "stats": facts.stats.model_copy(
                update={"total_amount": total, "refunded_amount": refunded}
            )
        }
    ),
    customers(),
    near_big,
    st.integers(min_value=0, max_value=2),
)


@PROPERTIES
@given(
    near_big,
    st.booleans(),
    near_big,
    st.lists(rich, min_size=1, max_size=7).map(numbered),
)
def test_money_past_2_to_the_53_compares_exactly(
    bound: int, as_float: bool, other: int, population: list[CustomerFacts]
) -> None:
    audience = loaded(population)
    by_id = {c.customer_id: c for c in population}
    for rule in money_rules(float(bound) if as_float else bound, other):
        assert_agrees(audience, rule, by_id, NOW, {})
