"""Segment rules of the domain: dependency order, one-pass membership, what changed, templates
and portrait buckets."""

from __future__ import annotations

from typing import Any

import pytest

from servicekit.errors import InvalidInput
from services.tagging.audience import AudienceEngine
from services.tagging.domain.portraits import DIMENSIONS, Dimension, counted, tag_dimension, within
from services.tagging.domain.rules.ast import all_of, attr, negate, parse_rule, segment, tag
from services.tagging.domain.rules.compile import compile_rule
from services.tagging.domain.rules.evaluate import matches
from services.tagging.domain.rules.facts import TagAssignment
from services.tagging.domain.rules.validate import find_problems
from services.tagging.domain.segment_templates import (
    BUILT_IN_TEMPLATES,
    SegmentTemplate,
    TemplateParameter,
    check_template,
    instantiate,
    placeholders,
)
from services.tagging.domain.segments import (
    CompiledSegment,
    dependency_order,
    membership_change,
    memberships,
    referenced_segments,
    users_of,
)
from tests.unit.tagging.factories import NOW, context, customer

RICH = attr("total_amount", "gte", 30_000)
FEMALE = attr("gender", "eq", "female")


def compiled(rules: dict[str, Any]) -> list[CompiledSegment]:
    return [CompiledSegment(sid, compile_rule(rules[sid])) for sid in dependency_order(rules)]


def test_a_segment_comes_after_the_segments_it_tests() -> None:
    rules = {"c": all_of(segment("b"), segment("a")), "b": segment("a"), "a": RICH}
    order = dependency_order(rules)
    assert order.index("a") < order.index("b") < order.index("c")
    assert referenced_segments(rules["c"]) == {"a", "b"}
    assert users_of("a", rules) == {"b", "c"} and users_of("c", rules) == set()


def test_a_cycle_that_slipped_past_validation_does_not_break_evaluation() -> None:
    rules = {"a": segment("b"), "b": segment("a")}
    assert sorted(dependency_order(rules)) == ["a", "b"]


def test_one_pass_answers_nested_segments() -> None:
    rules = {"rich_women": all_of(segment("rich"), FEMALE), "rich": RICH}
    segments = compiled(rules)
    woman = customer(gender="female", stats={"total_amount": 50_000})
    man = customer(gender="male", stats={"total_amount": 50_000})
    assert memberships(segments, woman, NOW) == {"rich", "rich_women"}
    assert memberships(segments, man, NOW) == {"rich"}
    assert memberships(segments, None, NOW) == set()


def test_membership_agrees_with_the_reference_evaluator() -> None:
    rules = {"rich": RICH, "not_rich_vip": all_of(segment("rich", "not_in"), tag("vip"))}
    segments = compiled(rules)
    who = customer(stats={"total_amount": 10})
    found = memberships(segments, who, NOW)
    rich = matches(RICH, who, NOW, {})
    expected = {"rich"} if rich else set()
    if matches(rules["not_rich_vip"], who, NOW, {"rich": rich}):
        expected.add("not_rich_vip")
    assert found == expected


def test_a_change_names_only_the_evaluated_segments() -> None:
    change = membership_change({"a", "gone"}, {"b"}, evaluated=["a", "b"])
    assert change.joined == {"b"} and change.left == {"a"} and change.changed
    assert not membership_change({"a"}, {"a"}, evaluated=["a"]).changed


def template(rule: dict[str, Any], *params: TemplateParameter) -> SegmentTemplate:
    return SegmentTemplate(template_id="tpl_x", name="t", rule=rule, parameters=params)


AMOUNT = TemplateParameter(name="amount", label="amount", type="money", default=100)


def test_a_template_fills_its_parameters_with_values_or_defaults() -> None:
    tpl = template({"field": "total_amount", "op": "gte", "value": "${amount}"}, AMOUNT)
    assert placeholders(tpl.rule) == {"amount"}
    assert instantiate(tpl, {})["value"] == 100
    assert instantiate(tpl, {"amount": 5})["value"] == 5


@pytest.mark.parametrize(
    ("values", "reason"),
    [({"amount": "lots"}, "whole number"), ({"other": 1}, "unknown parameters")],
)
def test_bad_template_values_are_refused(values: dict[str, Any], reason: str) -> None:
    tpl = template({"field": "total_amount", "op": "gte", "value": "${amount}"}, AMOUNT)
    with pytest.raises(InvalidInput, match=reason):
        instantiate(tpl, values)


def test_a_template_must_declare_exactly_what_it_uses() -> None:
    with pytest.raises(InvalidInput, match="undeclared parameters: amount"):
        check_template(template({"field": "total_amount", "op": "gte", "value": "${amount}"}))
    with pytest.raises(InvalidInput, match="not used by the rule: amount"):
        check_template(template({"field": "gender", "op": "exists"}, AMOUNT))


@pytest.mark.parametrize("built_in", BUILT_IN_TEMPLATES, ids=lambda t: t.template_id)
def test_every_built_in_template_is_a_valid_rule_with_its_defaults(
    built_in: SegmentTemplate,
) -> None:
    check_template(built_in)
    rule = parse_rule(instantiate(built_in, {}))
    assert find_problems(rule, context()) == []


def test_portrait_buckets_are_valid_rules_and_cover_a_field() -> None:
    for dimension in DIMENSIONS:
        for bucket in dimension.buckets:
            assert find_problems(within(RICH, bucket), context()) == [], bucket
    stage = next(d for d in DIMENSIONS if d.name == "lifecycle_stage")
    someone = customer(lifecycle_stage="customer")
    hits = [b.label for b in stage.buckets if matches(b.rule, someone, NOW, {})]
    assert hits == ["customer"]


def test_counted_shares_and_the_top_tags() -> None:
    tags: Dimension = tag_dimension([("vip", "VIP"), ("new", "New"), ("baby", "Baby")])
    shown = counted(tags, [5, 0, 9], 10, top=2)
    assert [(b.label, b.count, b.share) for b in shown.buckets] == [
        ("Baby", 9, 0.9),
        ("VIP", 5, 0.5),
    ]
    assert counted(tags, [0, 0, 0], 0).buckets[0].share == 0.0


def test_one_customers_memberships_agree_with_the_whole_tenant_build() -> None:
    """The live path (compiled predicates per customer) and the audience engine (masks over
    the tenant) give every customer the same answer."""
    rules = {
        "vip_women": all_of(segment("women"), tag("vip")),
        "women": FEMALE,
        "others": negate(segment("women")),
        "dangling": segment("no_such_segment"),
    }
    people = [
        customer(gender="female", tags={"vip": TagAssignment()}),
        customer(gender="female"),
        customer(gender="male", tags={"vip": TagAssignment()}),
        customer(),
    ]
    people = [c.model_copy(update={"customer_id": f"c{i}"}) for i, c in enumerate(people)]
    audience = AudienceEngine().tenant("t")
    audience.upsert_many(people)
    live = {who.customer_id: memberships(compiled(rules), who, NOW) for who in people}
    for segment_id in rules:
        built = audience.evaluate(segment(segment_id), NOW, rules)
        for who in people:
            assert (segment_id in live[who.customer_id]) is (who.customer_id in built)
