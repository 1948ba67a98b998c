"""Validation on write: each problem with its path, all problems at once, limits and cycles."""

from __future__ import annotations

from typing import Any

import pytest

from services.tagging.domain.rules.ast import (
    MAX_DEPTH,
    MAX_LEAVES,
    BehaviourCondition,
    Node,
    all_of,
    any_of,
    attr,
    negate,
    segment,
    tag,
)
from services.tagging.domain.rules.validate import (
    Problem,
    RuleProblems,
    find_problems,
    read_rule,
    validate_rule,
)
from tests.unit.tagging.factories import context

GENDER = attr("gender", "eq", "female")


def problems(rule: Node, **kwargs: Any) -> list[tuple[str, str]]:
    return [(p.field, p.reason) for p in find_problems(rule, context(), **kwargs)]


def paths(rule: Node, **kwargs: Any) -> list[str]:
    return [field for field, _ in problems(rule, **kwargs)]


VALID = [
    GENDER,
    attr("owner_id", "in", ["adv_1"]),
    attr("total_amount", "between", [0, 500_000]),
    attr("refund_rate", "lt", 0.5),
    attr("registered_at", "between", ["2025-01-01", "2025-01-01T23:59:59Z"]),
    attr("last_purchase_at", "not_within_last_days", 180),
    attr("custom.interests", "contains_all", ["golf", "tea"]),
    attr("custom.wedding_day", "after", "2024-02-29"),
    attr("consent.wechat.service", "is_true"),
    attr("custom.vip_club", "exists"),
    tag("vip"),
    tag("level", "in", ["gold"]),
    tag("score", "between", [1, 2.5]),
    BehaviourCondition(kind="store_visit", count=1, within_days=365),
]


@pytest.mark.parametrize("rule", VALID)
def test_valid_rules_have_no_problems(rule: Node) -> None:
    assert problems(all_of(rule)) == []
    validate_rule(rule, context())


INVALID = [
    (attr("age", "gt", 3), "rule.field", "unknown field 'age'"),
    (attr("custom.unknown", "exists"), "rule.field", "unknown field 'custom.unknown'"),
    (attr("gender", "gt", "female"), "rule.op", "operator 'gt' does not apply to enum field"),
    (attr("order_count", "contains", 3), "rule.op", "operator 'contains' does not apply"),
    (attr("registered_at", "eq", "2025-01-01"), "rule.op", "does not apply to datetime"),
    (attr("consent.sms.marketing", "eq", True), "rule.op", "use one of exists, is_false"),
    (attr("gender", "eq", "femme"), "rule.value", "'femme' is not one of the options"),
    (attr("gender", "eq", 1), "rule.value", "expected one of the field's options"),
    (attr("gender", "in", ["male", "x"]), "rule.value.1", "'x' is not one of the options"),
    (attr("gender", "in", []), "rule.value", "expected a non-empty list"),
    (attr("gender", "in", "male"), "rule.value", "expected a non-empty list"),
    (attr("owner_id", "eq", None), "rule.value", "expected text"),
    (attr("order_count", "gt", "3"), "rule.value", "expected a number"),
    (attr("order_count", "gt", True), "rule.value", "expected a number"),
    (attr("total_amount", "gte", 5000.5), "rule.value", "an amount in minor units"),
    (attr("order_count", "between", [5, 1]), "rule.value", "low bound is above the high"),
    (attr("order_count", "between", [1, 2, 3]), "rule.value", "expected [low, high]"),
    (attr("order_count", "between", [1, "x"]), "rule.value.1", "expected a number"),
    (
        attr("registered_at", "between", ["2025-02-01", "2025-01-01"]),
        "rule.value",
        "low bound is above",
    ),
    (attr("registered_at", "before", "yesterday"), "rule.value", "an ISO 8601 date"),
    (attr("registered_at", "before", 20250101), "rule.value", "an ISO 8601 date"),
    (attr("registered_at", "within_last_days", 0), "rule.value", "a whole number of days"),
    (attr("registered_at", "within_last_days", 3651), "rule.value", "from 1 to 3650"),
    (attr("registered_at", "within_last_days", 1.5), "rule.value", "a whole number of days"),
    (attr("custom.interests", "contains", "chess"), "rule.value", "not one of the options"),
    (attr("custom.vip_club", "is_true", True), "rule.value", "this operator takes no value"),
    (attr("gender", "exists", "yes"), "rule.value", "this operator takes no value"),
    (tag("nope"), "rule.tag_id", "unknown tag 'nope'"),
    (tag("vip", "eq", "x"), "rule.op", "operator 'eq' does not apply to flag tag 'VIP'"),
    (tag("vip", "has", "x"), "rule.value", "this operator takes no value"),
    (tag("level", "gt", 3), "rule.op", "does not apply to enum tag"),
    (tag("level", "eq", "bronze"), "rule.value", "'bronze' is not one of the options"),
    (tag("score", "eq", "high"), "rule.value", "expected a number"),
    (tag("score", "between", [9, 1]), "rule.value", "low bound is above"),
    (segment("ghost"), "rule.segment_id", "unknown segment 'ghost'"),
    (
        BehaviourCondition(kind="teleport", count=1, within_days=1),
        "rule.kind",
        "unknown behaviour kind",
    ),
]


@pytest.mark.parametrize(("rule", "path", "reason"), INVALID)
def test_each_problem_names_its_field(rule: Node, path: str, reason: str) -> None:
    found = problems(rule)
    assert len(found) == 1, found
    assert found[0][0] == path
    assert reason in found[0][1]


def test_paths_point_into_nested_groups() -> None:
    rule = all_of(
        GENDER, any_of(GENDER, negate(attr("gender", "eq", "femme"))), attr("x", "exists")
    )
    assert paths(rule) == ["rule.children.1.children.1.child.value", "rule.children.2.field"]


def test_all_problems_are_raised_together_as_problem_json_errors() -> None:
    rule = all_of(attr("age", "gt", 1), tag("nope"), attr("order_count", "between", [3, 1]))
    with pytest.raises(RuleProblems) as raised:
        validate_rule(rule, context())
    error = raised.value
    assert error.status == 422 and error.code == "invalid_rule"
    assert error.extra["errors"] == [
        {"field": "rule.children.0.field", "reason": "unknown field 'age'"},
        {"field": "rule.children.1.tag_id", "reason": "unknown tag 'nope'"},
        {"field": "rule.children.2.value", "reason": "the low bound is above the high bound"},
    ]
    assert error.detail.startswith("3 problems in the rule; first: unknown field 'age'")


def test_a_single_problem_is_the_detail_itself() -> None:
    with pytest.raises(RuleProblems) as raised:
        validate_rule(attr("age", "gt", 1), context())
    assert raised.value.detail == "unknown field 'age'"
    assert raised.value.problems == (Problem("rule.field", "unknown field 'age'"),)


def nested(levels: int) -> Node:
    rule: Node = GENDER
    for _ in range(levels - 1):
        rule = negate(rule)
    return rule


def test_depth_is_limited() -> None:
    assert problems(nested(MAX_DEPTH)) == []
    assert problems(nested(MAX_DEPTH + 1)) == [
        ("rule", f"the rule is nested {MAX_DEPTH + 1} levels deep; at most {MAX_DEPTH}")
    ]


def test_the_number_of_conditions_is_limited() -> None:
    half = all_of(*[GENDER] * 100)
    assert problems(all_of(half, half)) == []
    too_many = all_of(half, half, GENDER)
    assert problems(too_many) == [("rule", "the rule has 201 conditions; at most 200")]
    assert MAX_LEAVES == 200


def test_problems_are_capped_so_the_answer_stays_small() -> None:
    assert len(problems(all_of(*[attr("age", "gt", 1)] * 200))) == 50


# --- cycles between segments (and through tags assigned by tag rules) ---


def test_a_segment_that_names_itself_is_a_cycle() -> None:
    found = find_problems(all_of(GENDER, segment("s1")), context(), owner=("segment", "s1"))
    assert found == [
        Problem("rule.children.1.segment_id", "this closes a cycle: segment s1 → segment s1")
    ]


def test_a_direct_cycle_between_two_segments() -> None:
    ctx = context({"s1": GENDER, "s2": segment("s1")})
    found = find_problems(segment("s2", "not_in"), ctx, owner=("segment", "s1"))
    assert found == [
        Problem("rule.segment_id", "this closes a cycle: segment s1 → segment s2 → segment s1")
    ]


def test_an_indirect_cycle_is_found_through_any_depth() -> None:
    ctx = context({"s1": GENDER, "s2": any_of(GENDER, segment("s3")), "s3": negate(segment("s1"))})
    found = find_problems(all_of(segment("s2")), ctx, owner=("segment", "s1"))
    chain = "segment s1 → segment s2 → segment s3 → segment s1"
    assert found == [Problem("rule.children.0.segment_id", f"this closes a cycle: {chain}")]


def test_a_cycle_through_a_tag_rule() -> None:
    ctx = context({"s1": GENDER}, tag_rules={"vip": segment("s1")})
    found = find_problems(tag("vip"), ctx, owner=("segment", "s1"))
    assert [p.reason for p in found] == ["this closes a cycle: segment s1 → tag vip → segment s1"]


def test_shared_dependencies_without_a_cycle_are_fine() -> None:
    ctx = context({"s1": GENDER, "s2": segment("s4"), "s3": segment("s4"), "s4": GENDER})
    assert find_problems(all_of(segment("s2"), segment("s3")), ctx, owner=("segment", "s1")) == []


def test_an_existing_cycle_elsewhere_does_not_hang_validation() -> None:
    ctx = context({"s1": GENDER, "s2": segment("s3"), "s3": segment("s2")})
    assert find_problems(segment("s2"), ctx, owner=("segment", "s1")) == []


def test_replacing_a_segment_rule_ignores_its_old_rule() -> None:
    ctx = context({"s1": segment("s2"), "s2": GENDER})
    assert find_problems(GENDER, ctx, owner=("segment", "s2")) == []


# --- reading JSON: schema problems with clean paths ---


def test_read_rule_accepts_the_short_attribute_form() -> None:
    assert read_rule({"field": "gender", "op": "eq", "value": "female"}) == GENDER


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"field": "gender", "op": "eq", "value": {"$gt": ""}}, "rule.value"),
        ({"field": "gender", "op": "like", "value": "f"}, "rule.op"),
        ({"field": "$where", "op": "exists"}, "rule.field"),
        ({"type": "all", "children": []}, "rule.children"),
        ({"type": "all", "children": [{"type": "tag", "tag_id": "a b"}]}, "rule.children.0.tag_id"),
        ({"type": "not", "child": {"type": "weird"}}, "rule.child"),
        ({"field": "owner_id", "op": "in", "value": ["x"] * 1001}, "rule.value"),
        ({"type": "segment", "segment_id": "s1", "extra": 1}, "rule.extra"),
    ],
)
def test_read_rule_turns_schema_errors_into_rule_problems(data: object, path: str) -> None:
    with pytest.raises(RuleProblems) as raised:
        read_rule(data)
    assert path in [p.field for p in raised.value.problems]
