"""The rule language of segment rules and tag rules: a tree of immutable pydantic models.

A rule is `All` / `Any` / `Not` over leaf conditions. Every node carries a `type` so a rule
round-trips as JSON; a leaf without `type` but with `field` reads as an attribute condition,
so `{"field": "gender", "op": "eq", "value": "female"}` is a whole rule.

The tree is kept deliberately flat and closed so one AST serves two back ends: a per-customer
predicate (`compile.compile_rule`) and, later, set algebra over per-field indexes (a leaf is
one index probe, `All`/`Any` are intersection/union, `Not` is the complement within the
tenant's customers). Logic is two-valued (see `evaluate`), which is what makes `Not` a plain
complement.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

MAX_DEPTH = 8
MAX_LEAVES = 200
MAX_LIST_ITEMS = 1000
#: The behaviour index keeps daily counts for a year; a longer window could not be answered.
MAX_BEHAVIOUR_DAYS = 365

AttributeOp = Literal[
    "eq",
    "ne",
    "in",
    "not_in",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "before",
    "after",
    "within_last_days",
    "not_within_last_days",
    "contains",
    "contains_any",
    "contains_all",
    "is_true",
    "is_false",
]
TagOp = Literal["has", "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between"]
BehaviourTargetKey = Literal["category", "product_id", "store_id"]

# Values are JSON scalars or lists of them, never objects: a Mongo operator such as
# {"$gt": ""} cannot even be expressed. The field's type is checked by `validate`.
Text = Annotated[str, Field(max_length=200)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Scalar = Text | bool | int | Finite
Value = Scalar | Annotated[list[Scalar], Field(max_length=MAX_LIST_ITEMS)] | None
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}(\.[a-z0-9_]{1,40}){0,2}$")]


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class All(_Node):
    """Holds when every child holds."""

    type: Literal["all"] = "all"
    children: tuple[Rule, ...] = Field(min_length=1, max_length=MAX_LEAVES)


class Any(_Node):
    """Holds when at least one child holds."""

    type: Literal["any"] = "any"
    children: tuple[Rule, ...] = Field(min_length=1, max_length=MAX_LEAVES)


class Not(_Node):
    type: Literal["not"] = "not"
    child: Rule


class AttributeCondition(_Node):
    """A test of one catalogue field: profile attribute, custom field, statistic or consent."""

    type: Literal["attribute"] = "attribute"
    field: FieldName
    op: AttributeOp
    value: Value = None


class TagCondition(_Node):
    """`has` tests an active assignment; the other operators test a valued tag's value."""

    type: Literal["tag"] = "tag"
    tag_id: Id
    op: TagOp = "has"
    value: Value = None


class BehaviourTarget(_Node):
    key: BehaviourTargetKey
    value: Annotated[str, Field(min_length=1, max_length=64)]


class BehaviourCondition(_Node):
    """Behaviour `kind` (about `target`, if given) at least / at most `count` times within
    the last `within_days` calendar days, today included."""

    type: Literal["behaviour"] = "behaviour"
    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    target: BehaviourTarget | None = None
    op: Literal["at_least", "at_most"] = "at_least"
    count: Annotated[int, Field(ge=0, le=1_000_000)]
    within_days: Annotated[int, Field(ge=1, le=MAX_BEHAVIOUR_DAYS)]


class SegmentCondition(_Node):
    type: Literal["segment"] = "segment"
    segment_id: Id
    op: Literal["in", "not_in"] = "in"


def _node_type(data: object) -> str | None:
    if isinstance(data, dict):
        return data.get("type", "attribute" if "field" in data else None)
    return getattr(data, "type", None)


Rule = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[AttributeCondition, Tag("attribute")]
    | Annotated[TagCondition, Tag("tag")]
    | Annotated[BehaviourCondition, Tag("behaviour")]
    | Annotated[SegmentCondition, Tag("segment")],
    Discriminator(_node_type),
]
Group = All | Any | Not
Leaf = AttributeCondition | TagCondition | BehaviourCondition | SegmentCondition
Node = Group | Leaf

for _model in (All, Any, Not):
    _model.model_rebuild()

RULE_ADAPTER: TypeAdapter[Node] = TypeAdapter(Rule)


def parse_rule(data: object) -> Node:
    """A rule from its JSON form (dict); raises pydantic's ValidationError on a bad shape."""
    return RULE_ADAPTER.validate_python(data)


def parse_rule_json(text: str | bytes) -> Node:
    return RULE_ADAPTER.validate_json(text)


def rule_to_json(rule: Node) -> dict[str, object]:
    dumped: dict[str, object] = RULE_ADAPTER.dump_python(rule, mode="json")
    return dumped


# Short constructors so rules read like the brief: all_of(attr("gender", "eq", "female"), ...).
def all_of(*children: Node) -> All:
    return All(children=children)


def any_of(*children: Node) -> Any:
    return Any(children=children)


def negate(child: Node) -> Not:
    return Not(child=child)


def attr(field: str, op: AttributeOp, value: Value = None) -> AttributeCondition:
    return AttributeCondition(field=field, op=op, value=value)


def tag(tag_id: str, op: TagOp = "has", value: Value = None) -> TagCondition:
    return TagCondition(tag_id=tag_id, op=op, value=value)


def segment(segment_id: str, op: Literal["in", "not_in"] = "in") -> SegmentCondition:
    return SegmentCondition(segment_id=segment_id, op=op)


def children_of(node: Node) -> tuple[tuple[str, Node], ...]:
    """Each child with its path step, as validation problems name it (`children.2`)."""
    if isinstance(node, All | Any):
        return tuple((f"children.{i}", child) for i, child in enumerate(node.children))
    if isinstance(node, Not):
        return (("child", node.child),)
    return ()


def walk(rule: Node, path: str = "rule") -> Iterator[tuple[str, Node]]:
    """Every node, depth first, with its JSON-pointer-like path."""
    yield path, rule
    for step, child in children_of(rule):
        yield from walk(child, f"{path}.{step}")


def depth(rule: Node) -> int:
    """A leaf is depth 1; each group adds one level."""
    return 1 + max((depth(child) for _, child in children_of(rule)), default=0)


def leaves(rule: Node) -> Iterator[tuple[str, Leaf]]:
    for path, node in walk(rule):
        if isinstance(node, Leaf):
            yield path, node
