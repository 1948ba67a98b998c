"""What each operator means, on present and missing values; every case runs through both the
reference evaluator and the compiled predicate."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import pytest

from services.tagging.domain.rules.ast import (
    BehaviourCondition,
    Node,
    all_of,
    any_of,
    attr,
    negate,
    segment,
    tag,
)
from services.tagging.domain.rules.facts import CustomerFacts, TagAssignment
from tests.unit.tagging.factories import EVALUATORS, NOW, TODAY, Evaluator, customer

Holds = Callable[..., bool]

FEMALE = customer(gender="female", owner_id="adv_7", birthday_month=5)
NOBODY = customer()
DAY = timedelta(days=1)


@pytest.fixture(params=sorted(EVALUATORS))
def holds(request: pytest.FixtureRequest) -> Holds:
    evaluate: Evaluator = EVALUATORS[request.param]

    def run(rule: Node, who: CustomerFacts, segments: Mapping[str, bool] | None = None) -> bool:
        return evaluate(rule, who, NOW, segments or {})

    return run


TEXT_AND_ENUM = [
    (attr("gender", "eq", "female"), True),
    (attr("gender", "eq", "male"), False),
    (attr("gender", "ne", "male"), True),
    (attr("gender", "ne", "female"), False),
    (attr("gender", "in", ["male", "female"]), True),
    (attr("gender", "in", ["male", "other"]), False),
    (attr("gender", "not_in", ["male", "other"]), True),
    (attr("gender", "not_in", ["female"]), False),
    (attr("gender", "exists"), True),
    (attr("owner_id", "eq", "adv_7"), True),
    (attr("owner_id", "in", ["adv_1", "adv_7"]), True),
    (attr("lifecycle_stage", "exists"), False),
]


@pytest.mark.parametrize(("rule", "expected"), TEXT_AND_ENUM)
def test_text_and_enum_operators(holds: Holds, rule: Node, expected: bool) -> None:
    assert holds(rule, FEMALE) is expected


SPENDER = customer(
    birthday_month=5,
    stats={
        "order_count": 4,
        "total_amount": 600_000,
        "refunded_amount": 150_000,
        "first_purchase_at": NOW - 400 * DAY,
        "last_purchase_at": NOW - 10 * DAY,
    },
)
NUMBERS = [
    (attr("order_count", "eq", 4), True),
    (attr("order_count", "ne", 4), False),
    (attr("order_count", "gt", 3), True),
    (attr("order_count", "gt", 4), False),
    (attr("order_count", "gte", 4), True),
    (attr("order_count", "lt", 4), False),
    (attr("order_count", "lte", 4), True),
    (attr("order_count", "between", [4, 9]), True),
    (attr("order_count", "between", [5, 9]), False),
    (attr("total_amount", "gte", 500_000), True),
    (attr("net_amount", "eq", 450_000), True),
    (attr("refund_rate", "eq", 0.25), True),
    (attr("refund_rate", "lt", 0.2), False),
    (attr("recency_days", "eq", 10), True),
    (attr("recency_days", "lte", 30), True),
    (attr("birthday_month", "between", [5, 5]), True),
    (attr("birthday_month", "eq", 5.0), True),
]


@pytest.mark.parametrize(("rule", "expected"), NUMBERS)
def test_number_and_money_operators(holds: Holds, rule: Node, expected: bool) -> None:
    assert holds(rule, SPENDER) is expected


REGISTERED = customer(registered_at=NOW - 20 * DAY)
DATES = [
    (attr("registered_at", "before", "2025-05-26"), False),
    (attr("registered_at", "before", "2025-05-26T12:00:01Z"), True),
    (attr("registered_at", "after", "2025-05-26T11:59:59+00:00"), True),
    (attr("registered_at", "after", "2025-05-27"), False),
    (attr("registered_at", "between", ["2025-05-01", "2025-05-31"]), True),
    (attr("registered_at", "between", ["2025-05-27", "2025-05-31"]), False),
    (attr("registered_at", "within_last_days", 20), True),
    (attr("registered_at", "within_last_days", 19), False),
    (attr("registered_at", "not_within_last_days", 19), True),
    (attr("registered_at", "not_within_last_days", 20), False),
    (attr("registered_at", "exists"), True),
    # Edges: before and after are strict, between is inclusive.
    (attr("registered_at", "before", "2025-05-26T12:00:00Z"), False),
    (attr("registered_at", "after", "2025-05-26T12:00:00Z"), False),
    (attr("registered_at", "between", ["2025-05-26T12:00:00Z", "2025-05-26T12:00:00Z"]), True),
    # A naive date-time in a rule is UTC, as everywhere on the platform.
    (attr("registered_at", "before", "2025-05-26T12:00:01"), True),
]


@pytest.mark.parametrize(("rule", "expected"), DATES)
def test_datetime_operators(holds: Holds, rule: Node, expected: bool) -> None:
    # registered 2025-05-26 12:00 UTC
    assert holds(rule, REGISTERED) is expected


def test_a_future_date_is_neither_within_nor_not_within_the_last_days(holds: Holds) -> None:
    who = customer(custom={"wedding_day": NOW + 3 * DAY})
    assert not holds(attr("custom.wedding_day", "within_last_days", 30), who)
    assert not holds(attr("custom.wedding_day", "not_within_last_days", 30), who)
    assert holds(attr("custom.wedding_day", "after", "2025-06-15"), who)


def test_naive_datetimes_in_facts_are_taken_as_utc(holds: Holds) -> None:
    who = customer(registered_at=datetime(2025, 6, 1, 8, 0))
    assert holds(
        attr("registered_at", "between", ["2025-06-01T08:00:00Z", "2025-06-01T08:00Z"]), who
    )


INTERESTED = customer(custom={"interests": ["golf", "tea"], "vip_club": True, "skin_type": "dry"})
LISTS_AND_FLAGS = [
    (attr("custom.interests", "contains", "golf"), True),
    (attr("custom.interests", "contains", "wine"), False),
    (attr("custom.interests", "contains_any", ["wine", "tea"]), True),
    (attr("custom.interests", "contains_any", ["wine", "yoga"]), False),
    (attr("custom.interests", "contains_all", ["golf", "tea"]), True),
    (attr("custom.interests", "contains_all", ["golf", "wine"]), False),
    (attr("custom.vip_club", "is_true"), True),
    (attr("custom.vip_club", "is_false"), False),
    (attr("custom.skin_type", "eq", "dry"), True),
    (attr("custom.nickname", "exists"), False),
]


@pytest.mark.parametrize(("rule", "expected"), LISTS_AND_FLAGS)
def test_multi_enum_and_boolean_operators(holds: Holds, rule: Node, expected: bool) -> None:
    assert holds(rule, INTERESTED) is expected


def test_consents_are_booleans_by_channel_and_purpose(holds: Holds) -> None:
    who = customer(consents={"sms.marketing": True, "email.marketing": False})
    assert holds(attr("consent.sms.marketing", "is_true"), who)
    assert holds(attr("consent.email.marketing", "is_false"), who)
    assert not holds(attr("consent.push.marketing", "is_true"), who)
    assert not holds(attr("consent.push.marketing", "is_false"), who)
    assert holds(negate(attr("consent.push.marketing", "is_true")), who)


MISSING = [
    attr("gender", "eq", "female"),
    attr("gender", "ne", "female"),
    attr("gender", "in", ["female"]),
    attr("gender", "not_in", ["female"]),
    attr("birthday_month", "gt", 0),
    attr("birthday_month", "lte", 12),
    attr("birthday_month", "between", [1, 12]),
    attr("recency_days", "gte", 0),
    attr("last_purchase_at", "before", "2100-01-01"),
    attr("last_purchase_at", "not_within_last_days", 1),
    attr("registered_at", "within_last_days", 3650),
    attr("custom.interests", "contains_any", ["golf"]),
    attr("custom.vip_club", "is_true"),
    attr("custom.vip_club", "is_false"),
    attr("owner_id", "exists"),
    tag("score", "lt", 100),
]


@pytest.mark.parametrize("rule", MISSING)
def test_every_comparison_on_a_missing_value_is_false(holds: Holds, rule: Node) -> None:
    assert holds(rule, NOBODY) is False


@pytest.mark.parametrize("rule", MISSING)
def test_not_of_a_comparison_on_a_missing_value_is_true(holds: Holds, rule: Node) -> None:
    assert holds(negate(rule), NOBODY) is True


def test_ne_differs_from_not_eq_only_on_missing_values(holds: Holds) -> None:
    assert not holds(attr("gender", "ne", "male"), NOBODY)
    assert holds(negate(attr("gender", "eq", "male")), NOBODY)
    assert holds(attr("gender", "ne", "male"), FEMALE) == holds(
        negate(attr("gender", "eq", "male")), FEMALE
    )


def test_present_but_empty_is_not_missing(holds: Holds) -> None:
    who = customer(owner_id="", custom={"interests": []})
    assert holds(attr("owner_id", "exists"), who)
    assert holds(attr("custom.interests", "exists"), who)
    assert not holds(attr("custom.interests", "contains_any", ["golf"]), who)


def test_a_customer_who_never_bought_has_zero_orders_but_no_recency(holds: Holds) -> None:
    assert holds(attr("order_count", "eq", 0), NOBODY)
    assert holds(attr("refund_rate", "eq", 0), NOBODY)
    assert not holds(attr("recency_days", "exists"), NOBODY)


def test_a_value_of_the_wrong_kind_counts_as_missing(holds: Holds) -> None:
    who = customer(birthday_month="May", gender=True, registered_at="2025-01-01")
    assert not holds(attr("birthday_month", "gt", 1), who)
    assert not holds(attr("gender", "in", ["female"]), who)
    assert not holds(attr("gender", "eq", 1), who)
    assert not holds(attr("registered_at", "before", "2026-01-01"), who)


TAGGED = customer(
    tags={
        "vip": TagAssignment(),
        "level": TagAssignment(value="gold", expires_at=NOW + DAY),
        "score": TagAssignment(value=72),
        "old": TagAssignment(value="x", expires_at=NOW),
    }
)
TAG_CASES = [
    (tag("vip"), True),
    (tag("level"), True),
    (tag("old"), False),
    (tag("absent"), False),
    (tag("level", "eq", "gold"), True),
    (tag("level", "ne", "gold"), False),
    (tag("level", "in", ["gold", "silver"]), True),
    (tag("level", "not_in", ["silver"]), True),
    (tag("score", "gt", 70), True),
    (tag("score", "between", [80, 90]), False),
    (tag("vip", "eq", "gold"), False),
    (tag("old", "eq", "x"), False),
]


@pytest.mark.parametrize(("rule", "expected"), TAG_CASES)
def test_tags_count_while_active_and_compare_their_values(
    holds: Holds, rule: Node, expected: bool
) -> None:
    assert holds(rule, TAGGED) is expected


def viewed(count: int, days: int, *, category: str | None = "baby", op: str = "at_least") -> Node:
    target = {"key": "category", "value": category} if category else None
    return BehaviourCondition.model_validate(
        {"kind": "product_view", "target": target, "op": op, "count": count, "within_days": days}
    )


BROWSER = customer(
    behaviour={
        ("product_view", "category", "baby"): {TODAY: 1, TODAY - 29 * DAY: 2, TODAY - 30 * DAY: 5},
        ("product_view", "", ""): {TODAY: 4, TODAY + DAY: 9},
    }
)
BEHAVIOUR = [
    (viewed(3, 30), True),
    (viewed(4, 30), False),
    (viewed(8, 31), True),
    (viewed(1, 1), True),
    (viewed(2, 1), False),
    (viewed(3, 30, op="at_most"), True),
    (viewed(2, 30, op="at_most"), False),
    (viewed(1, 365, category="toys"), False),
    (viewed(0, 365, category="toys", op="at_most"), True),
    (viewed(4, 7, category=None), True),
    # A count dated after today (a skewed clock) is not in the window.
    (viewed(5, 7, category=None), False),
]


@pytest.mark.parametrize(("rule", "expected"), BEHAVIOUR)
def test_behaviour_counts_calendar_days_including_today(
    holds: Holds, rule: Node, expected: bool
) -> None:
    assert holds(rule, BROWSER) is expected


def test_segment_membership_and_absence(holds: Holds) -> None:
    members = {"s1": True, "s2": False}
    assert holds(segment("s1"), NOBODY, members)
    assert not holds(segment("s2"), NOBODY, members)
    assert not holds(segment("s3"), NOBODY, members)
    assert holds(segment("s3", "not_in"), NOBODY, members)
    assert not holds(segment("s1", "not_in"), NOBODY, members)


def test_groups_combine_children(holds: Holds) -> None:
    yes, no = attr("gender", "eq", "female"), attr("gender", "eq", "male")
    assert holds(all_of(yes, yes), FEMALE) and not holds(all_of(yes, no), FEMALE)
    assert holds(any_of(no, yes), FEMALE) and not holds(any_of(no, no), FEMALE)
    assert holds(negate(no), FEMALE) and not holds(negate(yes), FEMALE)


def test_the_compiled_rule_checks_cheap_children_before_behaviour_counts() -> None:
    from services.tagging.domain.rules.compile import compile_rule

    class Exploding(dict[tuple[str, str, str], dict[object, int]]):
        def get(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("behaviour was read although a cheaper child already failed")

    rule = all_of(viewed(1, 30), attr("gender", "eq", "male"))
    who = customer(gender="female")
    object.__setattr__(who, "behaviour", Exploding())
    assert compile_rule(rule)(who, NOW, {}) is False


def test_integers_past_the_float_range_compare_without_overflow() -> None:
    huge = 10**400
    rule = attr("total_amount", "gte", huge)
    for evaluate in EVALUATORS.values():
        assert evaluate(rule, customer(stats={"total_amount": huge + 1}), NOW, {})
        assert not evaluate(rule, customer(stats={"total_amount": huge - 1}), NOW, {})
