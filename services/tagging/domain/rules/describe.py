"""A rule as one line of text for the console:
"gender is female AND total spent ≥ ¥5,000.00 AND viewed category 'baby' ≥ 3 times in 30 days".
"""

from __future__ import annotations

from collections.abc import Mapping

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
from services.tagging.domain.rules.catalogue import Catalogue, ValueType, build_catalogue

_OPS: Mapping[str, str] = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is not one of",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "before": "is before",
    "after": "is after",
    "contains": "includes",
    "contains_any": "includes any of",
    "contains_all": "includes all of",
}
_VERBS: Mapping[str, str] = {
    "page_view": "viewed",
    "product_view": "viewed",
    "search": "searched",
    "add_to_cart": "added to cart",
    "remove_from_cart": "removed from cart",
    "favourite": "favourited",
    "share": "shared",
    "feedback": "gave feedback",
    "store_visit": "visited store",
    "coupon_view": "viewed coupon",
}
_TARGETS: Mapping[str, str] = {"category": "category", "product_id": "product", "store_id": "store"}


def describe(
    rule: Node,
    *,
    catalogue: Catalogue | None = None,
    tag_names: Mapping[str, str] | None = None,
    segment_names: Mapping[str, str] | None = None,
    currency: str = "¥",
) -> str:
    """Names come from the maps when given, else the ids are shown."""
    words = _Describer(
        catalogue or build_catalogue(), tag_names or {}, segment_names or {}, currency
    )
    return words.node(rule)


class _Describer:
    def __init__(
        self,
        catalogue: Catalogue,
        tag_names: Mapping[str, str],
        segment_names: Mapping[str, str],
        currency: str,
    ) -> None:
        self.catalogue = catalogue
        self.tag_names = tag_names
        self.segment_names = segment_names
        self.currency = currency

    def node(self, node: Node) -> str:
        if isinstance(node, All | Any):
            joiner = " AND " if isinstance(node, All) else " OR "
            return joiner.join(self.nested(child) for child in node.children)
        if isinstance(node, Not):
            return f"NOT {self.nested(node.child)}"
        if isinstance(node, AttributeCondition):
            return self.attribute(node)
        if isinstance(node, TagCondition):
            return self.tag(node)
        if isinstance(node, BehaviourCondition):
            return self.behaviour(node)
        return self.segment(node)

    def nested(self, node: Node) -> str:
        # Parentheses only where precedence would otherwise be ambiguous.
        grouped = isinstance(node, All | Any) and len(node.children) > 1
        return f"({self.node(node)})" if grouped else self.node(node)

    def attribute(self, node: AttributeCondition) -> str:
        spec = self.catalogue.get(node.field)
        label = spec.label if spec else node.field
        value_type = spec.type if spec else ValueType.TEXT
        op, value = node.op, node.value
        if op == "exists":
            return f"{label} is set"
        if op in ("is_true", "is_false"):
            return f"{label} is {'yes' if op == 'is_true' else 'no'}"
        if op in ("within_last_days", "not_within_last_days"):
            negation = "not " if op.startswith("not") else ""
            return f"{label} {negation}within the last {value} days"
        if op == "between" and isinstance(value, list) and len(value) == 2:
            low, high = (self.value(v, value_type) for v in value)
            return f"{label} is between {low} and {high}"
        return f"{label} {_OPS.get(op, op)} {self.value(value, value_type)}"

    def value(self, value: Value | object, value_type: ValueType) -> str:
        if isinstance(value, list):
            return ", ".join(self.value(item, value_type) for item in value)
        if value_type is ValueType.MONEY and isinstance(value, int):
            return money(value, self.currency)
        return str(value)

    def tag(self, node: TagCondition) -> str:
        name = self.tag_names.get(node.tag_id, node.tag_id)
        if node.op == "has":
            return f"has tag '{name}'"
        if node.op == "between" and isinstance(node.value, list) and len(node.value) == 2:
            return f"tag '{name}' is between {node.value[0]} and {node.value[1]}"
        return f"tag '{name}' {_OPS.get(node.op, node.op)} {self.value(node.value, ValueType.TEXT)}"

    def behaviour(self, node: BehaviourCondition) -> str:
        verb = _VERBS.get(node.kind, node.kind.replace("_", " "))
        target = node.target
        about = f" {_TARGETS[target.key]} '{target.value}'" if target else ""
        bound = "≥" if node.op == "at_least" else "≤"
        times = "time" if node.count == 1 else "times"
        return f"{verb}{about} {bound} {node.count} {times} in {node.within_days} days"

    def segment(self, node: SegmentCondition) -> str:
        name = self.segment_names.get(node.segment_id, node.segment_id)
        return f"{'in' if node.op == 'in' else 'not in'} segment '{name}'"


def money(minor_units: int, currency: str = "¥") -> str:
    """500000 -> '¥5,000.00'; integer arithmetic, so no float rounding."""
    sign = "-" if minor_units < 0 else ""
    major, minor = divmod(abs(minor_units), 100)
    return f"{sign}{currency}{major:,}.{minor:02d}"
