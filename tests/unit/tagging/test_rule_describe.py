"""The one-line description of a rule shown in the console."""

from __future__ import annotations

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
from services.tagging.domain.rules.describe import describe, money
from tests.unit.tagging.factories import CATALOGUE


def baby_views(count: int = 3) -> BehaviourCondition:
    return BehaviourCondition.model_validate(
        {
            "kind": "product_view",
            "target": {"key": "category", "value": "baby"},
            "count": count,
            "within_days": 30,
        }
    )


def test_the_console_example() -> None:
    rule = all_of(
        attr("gender", "eq", "female"), attr("total_amount", "gte", 500_000), baby_views()
    )
    assert describe(rule) == (
        "gender is female AND total spent ≥ ¥5,000.00"
        " AND viewed category 'baby' ≥ 3 times in 30 days"
    )


def test_groups_are_parenthesised_only_where_needed() -> None:
    female, vip = attr("gender", "eq", "female"), tag("vip")
    rule = any_of(all_of(female, vip), negate(any_of(vip, segment("s1"))), all_of(female))
    assert describe(rule, tag_names={"vip": "VIP"}, segment_names={"s1": "New parents"}) == (
        "(gender is female AND has tag 'VIP') OR NOT (has tag 'VIP' OR in segment 'New parents')"
        " OR gender is female"
    )


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (attr("gender", "in", ["female", "other"]), "gender is one of female, other"),
        (attr("lifecycle_stage", "not_in", ["churned"]), "lifecycle stage is not one of churned"),
        (attr("owner_id", "exists"), "owner is set"),
        (attr("net_amount", "between", [0, 123_456]), "net spent is between ¥0.00 and ¥1,234.56"),
        (attr("order_count", "lt", 2), "orders < 2"),
        (attr("refund_rate", "lte", 0.1), "refund rate ≤ 0.1"),
        (
            attr("last_purchase_at", "not_within_last_days", 180),
            "last purchase not within the last 180 days",
        ),
        (attr("registered_at", "within_last_days", 7), "registered within the last 7 days"),
        (attr("registered_at", "before", "2025-01-01"), "registered is before 2025-01-01"),
        (attr("consent.sms.marketing", "is_true"), "sms marketing consent is yes"),
        (
            attr("custom.interests", "contains_any", ["golf", "tea"]),
            "interests includes any of golf, tea",
        ),
        (attr("custom.vip_club", "is_false"), "vip_club is no"),
        (tag("level", "eq", "gold"), "tag 'level' is gold"),
        (tag("score", "between", [1, 5]), "tag 'score' is between 1 and 5"),
        (segment("s9", "not_in"), "not in segment 's9'"),
        (baby_views(1), "viewed category 'baby' ≥ 1 time in 30 days"),
        (
            BehaviourCondition(kind="store_visit", op="at_most", count=0, within_days=90),
            "visited store ≤ 0 times in 90 days",
        ),
    ],
)
def test_each_condition_reads_as_words(rule: Node, text: str) -> None:
    assert describe(rule, catalogue=CATALOGUE) == text


def test_unknown_fields_show_their_name() -> None:
    assert describe(attr("custom.gone", "eq", "x")) == "custom.gone is x"


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "¥0.00"), (5, "¥0.05"), (500_000, "¥5,000.00"), (-123_456_789, "-¥1,234,567.89")],
)
def test_money_is_formatted_from_minor_units(amount: int, text: str) -> None:
    assert money(amount) == text
