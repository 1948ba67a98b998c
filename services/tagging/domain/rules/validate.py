"""Validation of a segment rule or tag rule on write, against the tenant's catalogue, tags and
segments. Every problem is collected (up to `MAX_PROBLEMS`) with a JSON-pointer-like path
(`rule.children.2.value`), and raised together as one `RuleProblems` (problem+json, 422)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from servicekit.errors import InvalidInput
from services.tagging.domain.rules.ast import (
    MAX_DEPTH,
    MAX_LEAVES,
    AttributeCondition,
    BehaviourCondition,
    Node,
    SegmentCondition,
    TagCondition,
    Value,
    depth,
    leaves,
    parse_rule,
)
from services.tagging.domain.rules.catalogue import (
    OPS_BY_TYPE,
    TAG_OPS,
    Catalogue,
    TagSpec,
    TagValueKind,
    ValueType,
)
from services.tagging.domain.rules.values import is_integer, is_number, parse_instant

MAX_PROBLEMS = 50
#: `within_last_days` on a date field: ten years covers any retail question.
MAX_RECENT_DAYS = 3650


@dataclass(frozen=True)
class Problem:
    field: str
    reason: str


class RuleProblems(InvalidInput):
    """All that is wrong with a rule; `errors` lists each problem with its field and reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        count = len(self.problems)
        detail = (
            first.reason if count == 1 else f"{count} problems in the rule; first: {first.reason}"
        )
        super().__init__(detail, field=first.field, code="invalid_rule")
        self.extra["errors"] = [{"field": p.field, "reason": p.reason} for p in self.problems]


#: What a rule belongs to: ("segment", id) or ("tag", id) for a tag rule. Both can close a
#: cycle: segment S needs tag T, whose tag rule needs membership of S.
Owner = tuple[Literal["segment", "tag"], str]


@dataclass(frozen=True)
class RuleContext:
    """What a tenant's rules may refer to."""

    catalogue: Catalogue
    tags: Mapping[str, TagSpec] = field(default_factory=dict)
    #: Every segment of the tenant and its segment rule.
    segment_rules: Mapping[str, Node] = field(default_factory=dict)
    #: Tag id -> the tag rule that assigns it, for tags assigned automatically.
    tag_rules: Mapping[str, Node] = field(default_factory=dict)


def validate_rule(rule: Node, context: RuleContext, *, owner: Owner | None = None) -> None:
    problems = find_problems(rule, context, owner=owner)
    if problems:
        raise RuleProblems(problems)


def read_rule(data: object, *, root: str = "rule") -> Node:
    """Parse a rule's JSON form, turning schema errors into `RuleProblems` with clean paths."""
    try:
        return parse_rule(data)
    except ValidationError as error:
        raise RuleProblems(_schema_problems(error, root)) from None


_SCHEMA_STEPS = frozenset(
    {"children", "child", "field", "op", "value", "tag_id", "kind", "target", "key"}
    | {"count", "within_days", "segment_id", "type"}
)


def _schema_problems(error: ValidationError, root: str) -> list[Problem]:
    # pydantic's locations include union member names ("attribute", "constrained-str"); keep
    # only the steps a client wrote, and one problem per path.
    problems: dict[str, Problem] = {}
    for detail in error.errors():
        loc = detail["loc"]
        steps = [str(s) for s in loc if isinstance(s, int) or s in _SCHEMA_STEPS]
        if detail["type"] == "extra_forbidden":
            steps.append(str(loc[-1]))  # the unexpected key itself
        path = ".".join([root, *steps])
        problems.setdefault(path, Problem(path, detail["msg"]))
    return list(problems.values())[:MAX_PROBLEMS]


def find_problems(rule: Node, context: RuleContext, *, owner: Owner | None = None) -> list[Problem]:
    problems = [*_limit_problems(rule)]
    # A segment may not name itself, but that is a cycle, not an unknown segment.
    own = {owner[1]} if owner is not None and owner[0] == "segment" else set()
    known = set(context.segment_rules) | own
    for path, leaf in leaves(rule):
        problems.extend(_leaf_problems(path, leaf, context, known))
    if owner is not None:
        problems.extend(_cycle_problems(rule, owner, context))
    return problems[:MAX_PROBLEMS]


def _limit_problems(rule: Node) -> Iterator[Problem]:
    levels = depth(rule)
    if levels > MAX_DEPTH:
        yield Problem("rule", f"the rule is nested {levels} levels deep; at most {MAX_DEPTH}")
    count = sum(1 for _ in leaves(rule))
    if count > MAX_LEAVES:
        yield Problem("rule", f"the rule has {count} conditions; at most {MAX_LEAVES}")


def _leaf_problems(
    path: str, leaf: Node, context: RuleContext, segments: set[str]
) -> Iterator[Problem]:
    if isinstance(leaf, AttributeCondition):
        yield from _attribute_problems(path, leaf, context.catalogue)
    elif isinstance(leaf, TagCondition):
        yield from _tag_problems(path, leaf, context.tags)
    elif isinstance(leaf, BehaviourCondition):
        if leaf.kind not in context.catalogue.behaviour_kinds:
            yield Problem(f"{path}.kind", f"unknown behaviour kind '{leaf.kind}'")
    elif isinstance(leaf, SegmentCondition) and leaf.segment_id not in segments:
        yield Problem(f"{path}.segment_id", f"unknown segment '{leaf.segment_id}'")


def _attribute_problems(
    path: str, leaf: AttributeCondition, catalogue: Catalogue
) -> Iterator[Problem]:
    spec = catalogue.get(leaf.field)
    if spec is None:
        yield Problem(f"{path}.field", f"unknown field '{leaf.field}'")
        return
    if leaf.op not in OPS_BY_TYPE[spec.type]:
        allowed = ", ".join(sorted(OPS_BY_TYPE[spec.type]))
        reason = f"operator '{leaf.op}' does not apply to {spec.type} field '{spec.name}'"
        yield Problem(f"{path}.op", f"{reason}; use one of {allowed}")
        return
    yield from value_problems(f"{path}.value", leaf.op, leaf.value, spec.type, spec.options)


def _tag_problems(path: str, leaf: TagCondition, tags: Mapping[str, TagSpec]) -> Iterator[Problem]:
    spec = tags.get(leaf.tag_id)
    if spec is None:
        yield Problem(f"{path}.tag_id", f"unknown tag '{leaf.tag_id}'")
        return
    if leaf.op not in TAG_OPS[spec.value_kind]:
        allowed = ", ".join(sorted(TAG_OPS[spec.value_kind]))
        reason = f"operator '{leaf.op}' does not apply to {spec.value_kind} tag '{spec.name}'"
        yield Problem(f"{path}.op", f"{reason}; use one of {allowed}")
        return
    if leaf.op == "has":
        yield from _no_value(f"{path}.value", leaf.value)
        return
    value_type = ValueType.ENUM if spec.value_kind is TagValueKind.ENUM else ValueType.NUMBER
    yield from value_problems(f"{path}.value", leaf.op, leaf.value, value_type, spec.options)


def _no_value(path: str, value: Value) -> Iterator[Problem]:
    if value is not None:
        yield Problem(path, "this operator takes no value")


def value_problems(
    path: str, op: str, value: Value, value_type: ValueType, options: frozenset[str]
) -> Iterator[Problem]:
    """What is wrong with `value` as the operand of `op` on a field of `value_type`."""
    if op in ("exists", "is_true", "is_false"):
        yield from _no_value(path, value)
    elif op in ("within_last_days", "not_within_last_days"):
        if not is_integer(value) or not 1 <= value <= MAX_RECENT_DAYS:  # type: ignore[operator]
            yield Problem(path, f"expected a whole number of days from 1 to {MAX_RECENT_DAYS}")
    elif op in ("in", "not_in", "contains_any", "contains_all", "between"):
        yield from _list_problems(path, op, value, value_type, options)
    else:
        yield from _scalar_problems(path, value, value_type, options)


def _list_problems(
    path: str, op: str, value: Value, value_type: ValueType, options: frozenset[str]
) -> Iterator[Problem]:
    if not isinstance(value, list) or not value:
        yield Problem(path, "expected a non-empty list")
        return
    if op == "between" and len(value) != 2:
        yield Problem(path, "expected [low, high]")
        return
    item_problems = [
        problem
        for index, item in enumerate(value)
        for problem in _scalar_problems(f"{path}.{index}", item, value_type, options)
    ]
    yield from item_problems
    if op == "between" and not item_problems and _descending(value, value_type):
        yield Problem(path, "the low bound is above the high bound")


def _descending(bounds: list[object], value_type: ValueType) -> bool:
    low, high = bounds
    if value_type is ValueType.DATETIME:
        low, high = parse_instant(low), parse_instant(high)
    return low > high  # type: ignore[operator]


def _scalar_problems(
    path: str, value: object, value_type: ValueType, options: frozenset[str]
) -> Iterator[Problem]:
    expected = _EXPECTED[value_type]
    if not _ACCEPTS[value_type](value):
        yield Problem(path, f"expected {expected}")
    elif options and value not in options:
        shown = ", ".join(sorted(options)[:20])
        yield Problem(path, f"'{value}' is not one of the options: {shown}")


_EXPECTED: Mapping[ValueType, str] = {
    ValueType.TEXT: "text",
    ValueType.ENUM: "one of the field's options (text)",
    ValueType.NUMBER: "a number",
    ValueType.MONEY: "an amount in minor units (a whole number, e.g. 500000 for 5,000.00)",
    ValueType.DATETIME: "an ISO 8601 date or date-time, e.g. 2025-03-01 or 2025-03-01T08:00:00Z",
    ValueType.MULTI_ENUM: "one of the field's options (text)",
    ValueType.BOOLEAN: "no value",
}
_ACCEPTS: Mapping[ValueType, Callable[[object], bool]] = {
    ValueType.TEXT: lambda v: isinstance(v, str),
    ValueType.ENUM: lambda v: isinstance(v, str),
    ValueType.NUMBER: is_number,
    ValueType.MONEY: is_integer,
    ValueType.DATETIME: lambda v: isinstance(v, str) and parse_instant(v) is not None,
    ValueType.MULTI_ENUM: lambda v: isinstance(v, str),
    ValueType.BOOLEAN: lambda v: v is None,
}


def _dependencies(rule: Node) -> Iterator[tuple[str, Owner]]:
    for path, leaf in leaves(rule):
        if isinstance(leaf, SegmentCondition):
            yield f"{path}.segment_id", ("segment", leaf.segment_id)
        elif isinstance(leaf, TagCondition):
            yield f"{path}.tag_id", ("tag", leaf.tag_id)


def _rule_of(node: Owner, context: RuleContext) -> Node | None:
    kind, key = node
    return (context.segment_rules if kind == "segment" else context.tag_rules).get(key)


def _cycle_problems(rule: Node, owner: Owner, context: RuleContext) -> Iterator[Problem]:
    reported: set[Owner] = set()
    for path, dependency in _dependencies(rule):
        if dependency in reported:
            continue
        route = _route(dependency, owner, context)
        if route is not None:
            reported.add(dependency)
            chain = " → ".join(f"{kind} {key}" for kind, key in [owner, *route])
            yield Problem(path, f"this closes a cycle: {chain}")


def _route(start: Owner, goal: Owner, context: RuleContext) -> list[Owner] | None:
    """A dependency path start → … → goal (both included), or None. The goal's stored rule is
    not followed: the rule being validated replaces it."""
    stack: list[tuple[Owner, list[Owner]]] = [(start, [start])]
    seen: set[Owner] = set()
    while stack:
        node, route = stack.pop()
        if node == goal:
            return route
        if node in seen:
            continue
        seen.add(node)
        stored = _rule_of(node, context)
        if stored is not None:
            stack.extend((nxt, [*route, nxt]) for _, nxt in _dependencies(stored))
    return None
