"""Property-based tests: over random valid rules and random customers, the compiled predicate
agrees with the reference evaluator, and the logic laws the index back end relies on hold."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.tagging.domain.rules.ast import (
    MAX_DEPTH,
    BehaviourCondition,
    Node,
    all_of,
    any_of,
    attr,
    depth,
    negate,
    parse_rule,
    parse_rule_json,
    rule_to_json,
    segment,
    tag,
)
from services.tagging.domain.rules.catalogue import GENDERS
from services.tagging.domain.rules.compile import compile_rule
from services.tagging.domain.rules.describe import describe
from services.tagging.domain.rules.evaluate import matches
from services.tagging.domain.rules.facts import CustomerFacts, PurchaseFacts, TagAssignment
from services.tagging.domain.rules.validate import find_problems
from tests.unit.tagging.factories import CATALOGUE, NOW, TODAY, context

# Example counts keep the whole file under about five seconds.
AGREEMENT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LAWS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DAY = timedelta(days=1)
INTERESTS = ("golf", "wine", "tea", "yoga")
SEGMENTS = ("s1", "s2", "s3")

# Small domains on both sides, so rule thresholds and customer values often meet at the edges
# (where gt and gte, or within and not within, differ).
small_days = st.integers(min_value=-12, max_value=2)
instants = st.builds(
    lambda d, h: NOW + d * DAY + h * timedelta(hours=1), small_days, st.sampled_from([-12, 0, 1])
)
iso_values = instants.flatmap(lambda t: st.sampled_from([t.isoformat(), t.date().isoformat()]))
numbers = st.integers(min_value=0, max_value=4)
amounts = st.integers(min_value=0, max_value=4).map(lambda n: n * 100_000)
window_days = st.integers(min_value=1, max_value=12)
NUMBER_FIELDS = ["birthday_month", "order_count", "recency_days", "custom.shoe_size"]
DATE_FIELDS = ["registered_at", "last_purchase_at", "custom.wedding_day"]


def ordered_pair(values: st.SearchStrategy[object]) -> st.SearchStrategy[list[object]]:
    return st.lists(values, min_size=2, max_size=2).map(lambda p: sorted(p))  # type: ignore[type-var]


def ordered_instants() -> st.SearchStrategy[list[object]]:
    return st.lists(instants, min_size=2, max_size=2).map(
        lambda p: [t.isoformat() for t in sorted(p)]
    )


def attribute_leaf(
    fields: list[str], op: str, values: st.SearchStrategy[object] | None = None
) -> st.SearchStrategy[Node]:
    return st.builds(
        attr, st.sampled_from(fields), st.just(op), st.none() if values is None else values
    )


def behaviour_leaf(kind: str, category: str | None, op: str, count: int, days: int) -> Node:
    target = {"key": "category", "value": category} if category else None
    data = {"kind": kind, "target": target, "op": op, "count": count, "within_days": days}
    return BehaviourCondition.model_validate(data)


genders = st.sampled_from(GENDERS)
gender_lists = st.lists(genders, min_size=1, max_size=3)
interest_lists = st.lists(st.sampled_from(INTERESTS), min_size=1, max_size=3)
#: One entry per operator (and leaf kind), drawn with equal odds.
LEAVES: list[st.SearchStrategy[Node]] = [
    attribute_leaf(["gender"], "eq", genders),
    attribute_leaf(["gender"], "ne", genders),
    attribute_leaf(["gender"], "in", gender_lists),
    attribute_leaf(["gender"], "not_in", gender_lists),
    attribute_leaf(["owner_id"], "eq", st.sampled_from(["a", "b"])),
    attribute_leaf(["gender", "owner_id", "custom.interests", *DATE_FIELDS], "exists"),
    *(attribute_leaf(NUMBER_FIELDS, op, numbers) for op in ("eq", "ne", "gt", "gte", "lt", "lte")),
    attribute_leaf(NUMBER_FIELDS, "between", ordered_pair(numbers)),
    attribute_leaf(["total_amount", "net_amount"], "gte", amounts),
    attribute_leaf(["net_amount"], "between", ordered_pair(amounts)),
    attribute_leaf(["refund_rate"], "lte", st.sampled_from([0, 0.25, 0.5])),
    attribute_leaf(DATE_FIELDS, "before", iso_values),
    attribute_leaf(DATE_FIELDS, "after", iso_values),
    attribute_leaf(DATE_FIELDS, "between", ordered_instants()),
    attribute_leaf(DATE_FIELDS, "within_last_days", window_days),
    attribute_leaf(DATE_FIELDS, "not_within_last_days", window_days),
    attribute_leaf(["custom.interests"], "contains", st.sampled_from(INTERESTS)),
    attribute_leaf(["custom.interests"], "contains_any", interest_lists),
    attribute_leaf(["custom.interests"], "contains_all", interest_lists),
    attribute_leaf(["custom.vip_club", "consent.sms.marketing"], "is_true"),
    attribute_leaf(["custom.vip_club", "consent.sms.marketing"], "is_false"),
    st.builds(tag, st.sampled_from(["vip", "level", "score"])),
    st.builds(tag, st.just("level"), st.sampled_from(["eq", "ne"]), st.sampled_from(["gold"])),
    st.builds(tag, st.just("level"), st.sampled_from(["in", "not_in"]), st.just(["gold"])),
    st.builds(tag, st.just("score"), st.sampled_from(["gt", "lte", "eq"]), numbers),
    st.builds(segment, st.sampled_from(SEGMENTS), st.sampled_from(["in", "not_in"])),
    st.builds(
        behaviour_leaf,
        st.sampled_from(["product_view", "search"]),
        st.sampled_from([None, "baby", "toys"]),
        st.sampled_from(["at_least", "at_most"]),
        numbers,
        window_days,
    ),
]
# sampled_from spreads draws over the operators far more evenly than one_of(*LEAVES) does.
leaf_rules: st.SearchStrategy[Node] = st.sampled_from(LEAVES).flatmap(lambda leaf: leaf)
#: One condition of every operator at once: the customer is the costly draw, so each example
#: checks them all against it.
every_leaf = st.tuples(*LEAVES)
rules: st.SearchStrategy[Node] = st.recursive(
    leaf_rules,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4).map(lambda c: all_of(*c)),
        st.lists(children, min_size=1, max_size=4).map(lambda c: any_of(*c)),
        children.map(negate),
    ),
    max_leaves=12,
)


def maybe(values: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    # Present two times in three: missing values matter, but so do the comparisons.
    return st.one_of(st.none(), values, values)


def present(values: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}


TARGETS = (("", ""), ("category", "baby"), ("category", "toys"))
SERIES = st.sampled_from(
    [(kind, *target) for kind in ("product_view", "search") for target in TARGETS]
)
daily_counts = st.dictionaries(small_days.map(lambda d: TODAY + d * DAY), numbers, max_size=4)


@st.composite
def customers(draw: st.DrawFn) -> CustomerFacts:
    total = draw(amounts)
    last = draw(maybe(instants))
    attributes = {
        "gender": draw(maybe(st.sampled_from(GENDERS))),
        "owner_id": draw(maybe(st.sampled_from(["a", "b"]))),
        "birthday_month": draw(maybe(numbers)),
        "registered_at": draw(maybe(instants)),
    }
    custom = {
        "shoe_size": draw(maybe(numbers)),
        "wedding_day": draw(maybe(instants)),
        "interests": draw(maybe(st.lists(st.sampled_from(INTERESTS), unique=True, max_size=4))),
        "vip_club": draw(maybe(st.booleans())),
    }
    tags = {
        tag_id: TagAssignment(value=value, expires_at=draw(maybe(instants)))
        for tag_id, value in (
            ("vip", None),
            ("level", draw(maybe(st.sampled_from(["gold", "silver"])))),
            ("score", draw(maybe(numbers))),
        )
        if draw(st.booleans())
    }
    behaviour = draw(st.dictionaries(SERIES, daily_counts, max_size=3))
    return CustomerFacts(
        customer_id="cus_p",
        attributes=present(attributes),
        custom=present(custom),
        stats=PurchaseFacts(
            order_count=draw(numbers),
            total_amount=total,
            refunded_amount=draw(st.integers(min_value=0, max_value=total)),
            last_purchase_at=last,
            first_purchase_at=None if last is None else last - draw(numbers) * DAY,
        ),
        tags=tags,
        behaviour=behaviour,
        consents=draw(st.dictionaries(st.just("sms.marketing"), st.booleans())),
    )


memberships = st.dictionaries(st.sampled_from(SEGMENTS), st.booleans())
moments = st.sampled_from([NOW, NOW + timedelta(hours=13), NOW - timedelta(days=3, seconds=1)])


def both(rule: Node, who: CustomerFacts, now: datetime, members: dict[str, bool]) -> bool:
    expected = matches(rule, who, now, members)
    assert compile_rule(rule)(who, now, members) is expected
    return expected


@AGREEMENT
@given(every_leaf, customers(), moments, memberships)
def test_each_compiled_condition_agrees_with_the_reference_evaluator(
    conditions: tuple[Node, ...], who: CustomerFacts, now: datetime, members: dict[str, bool]
) -> None:
    for rule in conditions:
        both(rule, who, now, members)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules, customers(), moments, memberships)
def test_compiled_rule_agrees_with_the_reference_evaluator(
    rule: Node, who: CustomerFacts, now: datetime, members: dict[str, bool]
) -> None:
    both(rule, who, now, members)


@settings(max_examples=60, deadline=None)
@given(rules)
def test_generated_rules_are_valid_and_round_trip_as_json(rule: Node) -> None:
    assume(depth(rule) <= MAX_DEPTH)
    assert find_problems(rule, context({s: attr("gender", "exists") for s in SEGMENTS})) == []
    assert parse_rule(rule_to_json(rule)) == rule
    assert parse_rule_json(json.dumps(rule_to_json(rule))) == rule
    assert describe(rule, catalogue=CATALOGUE)


@LAWS
@given(rules, customers(), memberships)
def test_double_negation_is_identity(
    rule: Node, who: CustomerFacts, members: dict[str, bool]
) -> None:
    assert both(negate(negate(rule)), who, NOW, members) == both(rule, who, NOW, members)


@LAWS
@given(rules, rules, customers(), memberships)
def test_de_morgan(a: Node, b: Node, who: CustomerFacts, members: dict[str, bool]) -> None:
    not_all = both(negate(all_of(a, b)), who, NOW, members)
    assert not_all == both(any_of(negate(a), negate(b)), who, NOW, members)
    not_any = both(negate(any_of(a, b)), who, NOW, members)
    assert not_any == both(all_of(negate(a), negate(b)), who, NOW, members)
