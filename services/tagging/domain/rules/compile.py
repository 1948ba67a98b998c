"""The compiled evaluator: a rule turned once into nested closures, for per-event evaluation.

Compiling does, once per rule, what the reference evaluator (`evaluate.matches`) redoes per
customer: it resolves the field to a reader, parses dates and thresholds, turns lists into
sets, and orders the children of `All` / `Any` by cost so cheap attribute and membership
checks short-circuit before behaviour counts are summed. Evaluation is pure and never raises,
so reordering children cannot change an answer. It must agree with `matches` on every valid
rule; the property tests hold it to that. It expects a validated rule (`validate`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

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
from services.tagging.domain.rules.catalogue import CONSENT_PREFIX, CUSTOM_PREFIX
from services.tagging.domain.rules.facts import STAT_READERS, CustomerFacts, Fact
from services.tagging.domain.rules.values import is_number, parse_instant, same

Membership = Mapping[str, bool]
Predicate = Callable[[CustomerFacts, datetime, Membership], bool]
Reader = Callable[[CustomerFacts, datetime], Fact]
#: A test of a present value at `now`.
Test = Callable[[object, datetime], bool]

# Relative costs: a dict lookup and a comparison, versus summing up to a year of daily counts.
COST_LOOKUP: Final = 1
COST_TAG: Final = 2
COST_BEHAVIOUR: Final = 20


@dataclass(frozen=True)
class _Compiled:
    predicate: Predicate
    cost: int


def compile_rule(rule: Node) -> Predicate:
    """A predicate equivalent to `matches(rule, ...)`, cheaper to call many times."""
    return _compile(rule).predicate


def _compile(node: Node) -> _Compiled:
    if isinstance(node, All | Any):
        return _compile_group(node)
    if isinstance(node, Not):
        inner = _compile(node.child)
        test = inner.predicate
        return _Compiled(lambda f, n, m: not test(f, n, m), inner.cost)
    if isinstance(node, AttributeCondition):
        return _Compiled(_compile_attribute(node), COST_LOOKUP)
    if isinstance(node, TagCondition):
        return _Compiled(_compile_tag(node), COST_TAG)
    if isinstance(node, BehaviourCondition):
        return _Compiled(_compile_behaviour(node), COST_BEHAVIOUR)
    return _Compiled(_compile_segment(node), COST_LOOKUP)


def _compile_group(node: All | Any) -> _Compiled:
    parts = sorted((_compile(child) for child in node.children), key=lambda c: c.cost)
    tests = tuple(part.predicate for part in parts)
    cost = sum(part.cost for part in parts)
    if isinstance(node, All):
        # Plain loops, not all()/any() over a generator: this runs per event per rule node.
        def every(f: CustomerFacts, n: datetime, m: Membership) -> bool:
            for test in tests:  # noqa: SIM110
                if not test(f, n, m):
                    return False
            return True

        return _Compiled(every, cost)

    def some(f: CustomerFacts, n: datetime, m: Membership) -> bool:
        for test in tests:  # noqa: SIM110
            if test(f, n, m):
                return True
        return False

    return _Compiled(some, cost)


def _compile_segment(node: SegmentCondition) -> Predicate:
    segment_id = node.segment_id
    if node.op == "in":
        return lambda f, n, m: m.get(segment_id, False)
    return lambda f, n, m: not m.get(segment_id, False)


def _reader(name: str) -> Reader:
    if name.startswith(CUSTOM_PREFIX):
        key = name.removeprefix(CUSTOM_PREFIX)
        return lambda f, n: f.custom.get(key)
    if name.startswith(CONSENT_PREFIX):
        key = name.removeprefix(CONSENT_PREFIX)
        return lambda f, n: f.consents.get(key)
    if name in STAT_READERS:
        stat = STAT_READERS[name]
        return lambda f, n: stat(f.stats, n)
    return lambda f, n: f.attributes.get(name)


def _compile_attribute(node: AttributeCondition) -> Predicate:
    read = _reader(node.field)
    if node.op == "exists":
        return lambda f, n, m: read(f, n) is not None
    test = value_test(node.op, node.value)

    def holds(f: CustomerFacts, n: datetime, m: Membership) -> bool:
        actual = read(f, n)
        return actual is not None and test(actual, n)

    return holds


def _compile_tag(node: TagCondition) -> Predicate:
    tag_id = node.tag_id
    test = None if node.op == "has" else value_test(node.op, node.value)

    def holds(f: CustomerFacts, n: datetime, m: Membership) -> bool:
        assignment = f.tags.get(tag_id)
        if assignment is None or not assignment.active(n):
            return False
        if test is None:
            return True
        return assignment.value is not None and test(assignment.value, n)

    return holds


def _compile_behaviour(node: BehaviourCondition) -> Predicate:
    target = node.target
    key = (node.kind, target.key, target.value) if target else (node.kind, "", "")
    span = timedelta(days=node.within_days - 1)
    at_least, threshold = node.op == "at_least", node.count

    def holds(f: CustomerFacts, n: datetime, m: Membership) -> bool:
        daily = f.behaviour.get(key)
        today = n.date()
        first_day = today - span
        count = sum(c for day, c in daily.items() if first_day <= day <= today) if daily else 0
        return count >= threshold if at_least else count <= threshold

    return holds


def value_test(op: str, expected: Value) -> Test:
    """The comparison of a present value against `expected`, with `expected` prepared once."""
    builder = _TEST_BUILDERS.get(op)
    if builder is None:
        raise ValueError(f"unknown operator {op}")
    return builder(expected)


def _never(actual: object, now: datetime) -> bool:
    return False


def _eq(expected: Value) -> Test:
    return lambda a, n: same(a, expected)


def _ne(expected: Value) -> Test:
    return lambda a, n: not same(a, expected)


def _member(expected: Value, *, inside: bool) -> Test:
    if not isinstance(expected, list):
        return _never
    options = _strings(expected)
    return lambda a, n: isinstance(a, str) and (a in options) == inside


def _ordered(op: str) -> Callable[[Value], Test]:
    # operator.* on the original values, not floats: money in minor units may pass 2**53.
    compare: Callable[[object, object], bool] = {
        "gt": operator.gt,
        "gte": operator.ge,
        "lt": operator.lt,
        "lte": operator.le,
    }[op]

    def build(expected: Value) -> Test:
        if not is_number(expected):
            return _never
        return lambda a, n: is_number(a) and compare(a, expected)

    return build


def _between(expected: Value) -> Test:
    # One operator for numbers and datetimes: the present value decides which bounds apply.
    bounds = expected if isinstance(expected, list) and len(expected) == 2 else [None, None]
    low, high = bounds
    numeric = is_number(low) and is_number(high)
    start, end = parse_instant(low), parse_instant(high)

    def holds(a: object, n: datetime) -> bool:
        if isinstance(a, datetime):
            return start is not None and end is not None and start <= a <= end
        return numeric and is_number(a) and low <= a <= high  # type: ignore[operator]

    return holds


def _instant_test(op: str) -> Callable[[Value], Test]:
    def build(expected: Value) -> Test:
        bound = parse_instant(expected)
        if bound is None:
            return _never
        if op == "before":
            return lambda a, n: isinstance(a, datetime) and a < bound
        return lambda a, n: isinstance(a, datetime) and a > bound

    return build


def _recent(*, within: bool) -> Callable[[Value], Test]:
    def build(expected: Value) -> Test:
        if not isinstance(expected, int):
            return _never
        window = timedelta(days=expected)
        if within:
            return lambda a, n: isinstance(a, datetime) and n - window <= a <= n
        return lambda a, n: isinstance(a, datetime) and a < n - window

    return build


def _contains(expected: Value) -> Test:
    return lambda a, n: isinstance(a, list) and expected in a


def _strings(expected: Value) -> frozenset[str]:
    return (
        frozenset(v for v in expected if isinstance(v, str))
        if isinstance(expected, list)
        else frozenset()
    )


def _contains_any(expected: Value) -> Test:
    wanted = _strings(expected)
    return lambda a, n: isinstance(a, list) and not wanted.isdisjoint(a)


def _contains_all(expected: Value) -> Test:
    wanted = _strings(expected)
    return lambda a, n: isinstance(a, list) and wanted.issubset(a)


_TEST_BUILDERS: Mapping[str, Callable[[Value], Test]] = {
    "eq": _eq,
    "ne": _ne,
    "in": lambda e: _member(e, inside=True),
    "not_in": lambda e: _member(e, inside=False),
    "gt": _ordered("gt"),
    "gte": _ordered("gte"),
    "lt": _ordered("lt"),
    "lte": _ordered("lte"),
    "between": _between,
    "before": _instant_test("before"),
    "after": _instant_test("after"),
    "within_last_days": _recent(within=True),
    "not_within_last_days": _recent(within=False),
    "contains": _contains,
    "contains_any": _contains_any,
    "contains_all": _contains_all,
    "is_true": lambda e: lambda a, n: a is True,
    "is_false": lambda e: lambda a, n: a is False,
}
