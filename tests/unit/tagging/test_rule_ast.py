"""The rule tree as JSON: its shape, the short attribute form, and what the schema refuses."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.tagging.domain.rules.ast import (
    MAX_LIST_ITEMS,
    All,
    AttributeCondition,
    BehaviourCondition,
    Not,
    all_of,
    any_of,
    attr,
    depth,
    leaves,
    negate,
    parse_rule,
    parse_rule_json,
    rule_to_json,
    segment,
    tag,
    walk,
)

EXAMPLE = {
    "type": "all",
    "children": [
        {"type": "attribute", "field": "gender", "op": "eq", "value": "female"},
        {"type": "attribute", "field": "total_amount", "op": "gte", "value": 500000},
        {
            "type": "behaviour",
            "kind": "product_view",
            "target": {"key": "category", "value": "baby"},
            "op": "at_least",
            "count": 3,
            "within_days": 30,
        },
        {"type": "not", "child": {"type": "segment", "segment_id": "churn_risk", "op": "in"}},
        {"type": "any", "children": [{"type": "tag", "tag_id": "vip", "op": "has", "value": None}]},
    ],
}


def test_a_rule_round_trips_as_json() -> None:
    rule = parse_rule(EXAMPLE)
    assert isinstance(rule, All)
    assert rule_to_json(rule) == EXAMPLE
    assert parse_rule_json(json.dumps(EXAMPLE)) == rule


def test_the_short_attribute_form_needs_no_type() -> None:
    rule = parse_rule({"field": "gender", "op": "eq", "value": "female"})
    assert rule == AttributeCondition(field="gender", op="eq", value="female")
    assert rule_to_json(rule)["type"] == "attribute"


def test_values_keep_their_json_kind() -> None:
    rule = parse_rule({"field": "x", "op": "in", "value": [1, 2.5, True, "a"]})
    assert isinstance(rule, AttributeCondition)
    assert rule.value == [1, 2.5, True, "a"]
    assert [type(v) for v in rule.value] == [int, float, bool, str]  # type: ignore[union-attr]


def test_rules_are_immutable_and_hashable_by_value() -> None:
    rule = all_of(attr("gender", "eq", "female"), tag("vip"))
    with pytest.raises(ValidationError):
        rule.children = ()  # type: ignore[misc]
    assert rule == all_of(attr("gender", "eq", "female"), tag("vip"))


@pytest.mark.parametrize(
    "data",
    [
        {"field": "gender", "op": "eq", "value": {"$gt": ""}},
        {"field": "gender", "op": "eq", "value": [{"$ne": 1}]},
        {"field": "gender", "op": "regex", "value": "f.*"},
        {"field": "Gender", "op": "exists"},
        {"field": "a.b.c.d", "op": "exists"},
        {"field": "x", "op": "eq", "value": "y" * 201},
        {"field": "x", "op": "eq", "value": float("nan")},
        {"field": "x", "op": "in", "value": ["v"] * (MAX_LIST_ITEMS + 1)},
        {"type": "all", "children": []},
        {"type": "not"},
        {"type": "xor", "children": []},
        {"op": "eq", "value": 1},
        {"type": "segment", "segment_id": "s1", "op": "maybe"},
        {"type": "tag", "tag_id": "$where"},
        {"type": "behaviour", "kind": "product_view", "count": -1, "within_days": 7},
        {"type": "behaviour", "kind": "product_view", "count": 1, "within_days": 366},
        {
            "type": "behaviour",
            "kind": "search",
            "count": 1,
            "within_days": 7,
            "target": {"key": "x"},
        },
        "gender = female",
    ],
)
def test_the_schema_refuses_bad_shapes(data: object) -> None:
    with pytest.raises(ValidationError):
        parse_rule(data)


def test_a_list_of_the_maximum_size_is_accepted() -> None:
    assert parse_rule({"field": "x", "op": "in", "value": ["v"] * MAX_LIST_ITEMS})


def test_walk_names_each_node_by_its_path() -> None:
    rule = all_of(attr("gender", "exists"), negate(any_of(tag("vip"), segment("s1"))))
    assert [path for path, _ in walk(rule)] == [
        "rule",
        "rule.children.0",
        "rule.children.1",
        "rule.children.1.child",
        "rule.children.1.child.children.0",
        "rule.children.1.child.children.1",
    ]
    assert [path for path, _ in leaves(rule)] == [
        "rule.children.0",
        "rule.children.1.child.children.0",
        "rule.children.1.child.children.1",
    ]
    assert depth(rule) == 4
    assert depth(tag("vip")) == 1
    assert isinstance(rule.children[1], Not)


def test_behaviour_defaults_to_at_least_without_target() -> None:
    rule = parse_rule({"type": "behaviour", "kind": "store_visit", "count": 2, "within_days": 90})
    assert rule == BehaviourCondition(kind="store_visit", count=2, within_days=90)
    assert isinstance(rule, BehaviourCondition) and rule.op == "at_least" and rule.target is None
