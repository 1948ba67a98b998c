"""Tag rules without I/O: which rules are time-based, and what to put on and take off."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.tagging.domain.rules.ast import (
    BehaviourCondition,
    BehaviourTarget,
    Node,
    all_of,
    attr,
    negate,
    tag,
)
from services.tagging.domain.rules.catalogue import CustomField
from services.tagging.domain.rules.compile import compile_rule
from services.tagging.domain.rules.facts import CustomerFacts, PurchaseFacts
from services.tagging.domain.tag_rules import (
    Change,
    CompiledRule,
    Current,
    custom_fields_for,
    is_time_based,
    plan_changes,
)

NOW = datetime(2025, 6, 15, tzinfo=UTC)
BABY = BehaviourCondition(
    kind="product_view",
    target=BehaviourTarget(key="category", value="baby"),
    count=3,
    within_days=30,
)


@pytest.mark.parametrize(
    ("rule", "timed"),
    [
        (attr("total_amount", "gte", 500_000), False),
        (attr("last_purchase_at", "before", "2025-01-01"), False),
        (attr("last_purchase_at", "not_within_last_days", 180), True),
        (attr("registered_at", "within_last_days", 30), True),
        (attr("recency_days", "gt", 90), True),
        (BABY, True),
        (all_of(attr("gender", "eq", "female"), negate(BABY)), True),
        (tag("vip"), False),
    ],
)
def test_time_based_rules_are_found_in_the_tree(rule: Node, timed: bool) -> None:
    assert is_time_based(rule) is timed


def test_custom_fields_seen_keep_their_type_and_unseen_ones_are_text() -> None:
    rule = all_of(attr("custom.shoe_size", "gte", 38), attr("custom.nickname", "eq", "x"))
    fields = custom_fields_for(rule, {"shoe_size": "number"})
    assert fields == [
        CustomField(key="nickname", type="text"),
        CustomField(key="shoe_size", type="number"),
    ]


def compiled(rule_id: str, tag_id: str, rule: Node, value: object = None, priority: int = 0):
    return CompiledRule(rule_id, tag_id, value, priority, compile_rule(rule))  # type: ignore[arg-type]


def spender(total: int) -> CustomerFacts:
    return CustomerFacts(customer_id="c", stats=PurchaseFacts(total_amount=total))


HIGH = compiled("r1", "high_value", attr("total_amount", "gte", 500_000))


def test_a_holding_rule_puts_its_tag_on_once() -> None:
    assert plan_changes([HIGH], spender(600_000), [], NOW) == [
        Change("high_value", "r1", assign=True)
    ]
    on = [Current("high_value", None, "rule")]
    assert plan_changes([HIGH], spender(600_000), on, NOW) == []


def test_a_rule_that_stops_holding_takes_off_only_what_a_rule_put_on() -> None:
    by_rule = [Current("high_value", None, "rule")]
    assert plan_changes([HIGH], spender(1), by_rule, NOW) == [
        Change("high_value", "r1", assign=False)
    ]
    by_hand = [Current("high_value", None, "manual")]
    assert plan_changes([HIGH], spender(1), by_hand, NOW) == []
    assert plan_changes([HIGH], spender(600_000), by_hand, NOW) == []


def test_a_merged_customer_loses_rule_tags() -> None:
    on = [Current("high_value", None, "rule")]
    assert plan_changes([HIGH], None, on, NOW) == [Change("high_value", "r1", assign=False)]


def test_the_holding_rule_of_highest_priority_sets_a_valued_tag() -> None:
    gold = compiled("r-gold", "level", attr("total_amount", "gte", 500_000), "gold", priority=2)
    silver = compiled("r-silver", "level", attr("total_amount", "gte", 100_000), "silver")
    current = [Current("level", "silver", "rule")]
    assert plan_changes([silver, gold], spender(600_000), current, NOW) == [
        Change("level", "r-gold", assign=True, value="gold")
    ]
    assert plan_changes([silver, gold], spender(200_000), current, NOW) == []
