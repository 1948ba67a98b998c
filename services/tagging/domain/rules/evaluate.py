"""The reference evaluator: what a rule means, written for obviousness rather than speed.

Missing values (two-valued logic, SQL-like at the leaves):
- a field is missing when it is absent or None (also when it holds a value of the wrong kind,
  e.g. text in a number field, which validated facts never do);
- every comparison on a missing value is false: `eq`, `ne`, `in`, `not_in`, `gt`..`between`,
  `before`, `after`, `within_last_days`, `not_within_last_days`, `contains*`, `is_true`,
  `is_false`. So `ne "female"` does NOT match a customer without a gender;
- `Not` is plain negation, so `Not(eq "female")` DOES match them; `exists` tests presence;
- an empty list or empty string is present, not missing;
- a consent never recorded is missing: `is_true` and `is_false` are both false for it;
- a tag that is not assigned, or whose expiry has passed, is absent: `has` and every value
  comparison are false; a tag without a value fails every value comparison;
- behaviour counts are never missing: no behaviour is a count of 0 (so `at_most` holds);
- a segment absent from the membership map is one the customer is not in.
Because leaves are two-valued, Not(Not(r)) ≡ r and De Morgan's laws hold, and an index back end
can compute Not as the complement of a set.

Time: `within_last_days N` holds for now - N days <= t <= now; `not_within_last_days N` for
t < now - N days (a date in the future is neither); `between` bounds are inclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from services.tagging.domain.rules.ast import (
    All,
    Any,
    AttributeCondition,
    BehaviourCondition,
    Node,
    Not,
    SegmentCondition,
    TagCondition,
    Value,
)
from services.tagging.domain.rules.facts import CustomerFacts, Fact, TagAssignment, read_field
from services.tagging.domain.rules.values import is_number, parse_instant, same


def matches(
    rule: Node, customer: CustomerFacts, now: datetime, segments: Mapping[str, bool]
) -> bool:
    """Does `customer` satisfy `rule` at `now`, given their current segment memberships?"""
    if isinstance(rule, All):
        return all(matches(child, customer, now, segments) for child in rule.children)
    if isinstance(rule, Any):
        return any(matches(child, customer, now, segments) for child in rule.children)
    if isinstance(rule, Not):
        return not matches(rule.child, customer, now, segments)
    if isinstance(rule, AttributeCondition):
        return attribute_holds(rule, read_field(customer, rule.field, now), now)
    if isinstance(rule, TagCondition):
        return tag_holds(rule, customer.tags.get(rule.tag_id), now)
    if isinstance(rule, BehaviourCondition):
        return behaviour_holds(rule, customer, now)
    if isinstance(rule, SegmentCondition):
        member = segments.get(rule.segment_id, False)
        return member if rule.op == "in" else not member
    raise TypeError(f"not a rule node: {rule!r}")


def attribute_holds(condition: AttributeCondition, actual: Fact, now: datetime) -> bool:
    if condition.op == "exists":
        return actual is not None
    if actual is None:
        return False
    return compare(condition.op, actual, condition.value, now)


def compare(op: str, actual: object, expected: Value, now: datetime) -> bool:
    """One comparison of a present value; a value of the wrong kind compares false."""
    if op == "eq":
        return same(actual, expected)
    if op == "ne":
        return not same(actual, expected)
    if op in ("in", "not_in"):
        if not isinstance(actual, str) or not isinstance(expected, list):
            return False
        return (actual in expected) == (op == "in")
    # `between` serves numbers and datetimes alike: the value present decides which.
    if op in ("before", "after", "between", "within_last_days", "not_within_last_days") and (
        isinstance(actual, datetime)
    ):
        return _compare_instants(op, actual, expected, now)
    if op in ("gt", "gte", "lt", "lte", "between"):
        return is_number(actual) and _compare_numbers(op, actual, expected)
    if op in ("before", "after", "within_last_days", "not_within_last_days"):
        return False
    if op in ("contains", "contains_any", "contains_all"):
        return isinstance(actual, list) and _compare_lists(op, actual, expected)
    if op == "is_true":
        return actual is True
    if op == "is_false":
        return actual is False
    raise ValueError(f"unknown operator {op}")


def _compare_numbers(op: str, actual: object, expected: Value) -> bool:
    if op == "between":
        if not isinstance(expected, list) or not all(map(is_number, expected)):
            return False
        low, high = expected
        return low <= actual <= high  # type: ignore[operator]
    if not is_number(expected):
        return False
    return {
        "gt": lambda a, e: a > e,
        "gte": lambda a, e: a >= e,
        "lt": lambda a, e: a < e,
        "lte": lambda a, e: a <= e,
    }[op](actual, expected)


def _compare_instants(op: str, actual: datetime, expected: Value, now: datetime) -> bool:
    if op in ("before", "after"):
        bound = parse_instant(expected)
        return bound is not None and (actual < bound if op == "before" else actual > bound)
    if op == "between":
        bounds = [parse_instant(v) for v in expected] if isinstance(expected, list) else []
        low, high = bounds if len(bounds) == 2 else (None, None)
        return low is not None and high is not None and low <= actual <= high
    if not isinstance(expected, int):
        return False
    cutoff = now - timedelta(days=expected)
    if op == "within_last_days":
        return cutoff <= actual <= now
    return actual < cutoff


def _compare_lists(op: str, actual: list[object], expected: Value) -> bool:
    if op == "contains":
        return expected in actual
    assert isinstance(expected, list)
    if op == "contains_any":
        return any(item in actual for item in expected)
    return all(item in actual for item in expected)


def tag_holds(condition: TagCondition, assignment: TagAssignment | None, now: datetime) -> bool:
    if assignment is None or not assignment.active(now):
        return False
    if condition.op == "has":
        return True
    if assignment.value is None:
        return False
    return compare(condition.op, assignment.value, condition.value, now)


def behaviour_holds(condition: BehaviourCondition, customer: CustomerFacts, now: datetime) -> bool:
    target = condition.target
    key = (condition.kind, target.key, target.value) if target else (condition.kind, "", "")
    today = now.date()
    first_day = today - timedelta(days=condition.within_days - 1)
    daily = customer.behaviour.get(key, {})
    count = sum(n for day, n in daily.items() if first_day <= day <= today)
    return count >= condition.count if condition.op == "at_least" else count <= condition.count
