"""Segment templates (人群模板): a rule with named parameters, so an operator creates "at risk,
no purchase in 180 days" by choosing a template and a number instead of writing the rule.
Pure: no I/O.

A parameter appears in the template's rule as the text `"${name}"` wherever a value goes;
`instantiate` replaces it with the value given (or the default) before the rule is parsed and
validated like any other. Built-in templates ship with the service; a tenant adds its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from servicekit.errors import InvalidInput, NotFound

ParameterType = Literal["integer", "money", "text"]
_PLACEHOLDER = re.compile(r"^\$\{([a-z][a-z0-9_]{0,39})\}$")
#: Built-in template ids start with this; a tenant's own never do.
BUILT_IN_PREFIX = "builtin."


class TemplateParameter(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=100)
    type: ParameterType = "integer"
    default: int | str | None = None


class SegmentTemplate(BaseModel):
    model_config = ConfigDict(frozen=True)

    template_id: str
    #: None for a built-in template.
    tenant: str | None = None
    name: str
    description: str = ""
    category: str = "general"
    rule: dict[str, Any]
    parameters: tuple[TemplateParameter, ...] = ()


class TemplateNotFound(NotFound):
    def __init__(self, template_id: str) -> None:
        super().__init__(f"no segment template {template_id}", code="segment_template_not_found")


def placeholders(rule: object) -> set[str]:
    """Every parameter name the rule's JSON mentions."""
    if isinstance(rule, dict):
        return set().union(*(placeholders(v) for v in rule.values())) if rule else set()
    if isinstance(rule, list):
        return set().union(*(placeholders(v) for v in rule)) if rule else set()
    match = _PLACEHOLDER.match(rule) if isinstance(rule, str) else None
    return {match.group(1)} if match else set()


def check_template(template: SegmentTemplate) -> None:
    """Every placeholder is a declared parameter and every parameter is used."""
    used, declared = placeholders(template.rule), {p.name for p in template.parameters}
    if undeclared := sorted(used - declared):
        raise InvalidInput(
            f"the rule uses undeclared parameters: {', '.join(undeclared)}",
            field="parameters",
            code="invalid_template",
        )
    if unused := sorted(declared - used):
        raise InvalidInput(
            f"parameters not used by the rule: {', '.join(unused)}",
            field="parameters",
            code="invalid_template",
        )


def instantiate(template: SegmentTemplate, values: Mapping[str, object]) -> dict[str, Any]:
    """The template's rule with every placeholder replaced by its value."""
    declared = {p.name: p for p in template.parameters}
    if unknown := sorted(set(values) - set(declared)):
        raise InvalidInput(
            f"unknown parameters for template {template.template_id}: {', '.join(unknown)}",
            field="parameters",
            code="invalid_template_parameters",
        )
    chosen = {name: _value(p, values.get(name, p.default)) for name, p in declared.items()}
    replaced: dict[str, Any] = _replace(template.rule, chosen)
    return replaced


def _value(parameter: TemplateParameter, value: object) -> int | str:
    field = f"parameters.{parameter.name}"
    if value is None:
        raise InvalidInput(
            f"template parameter {parameter.name} ({parameter.label}) needs a value",
            field=field,
            code="invalid_template_parameters",
        )
    wants_number = parameter.type in ("integer", "money")
    if wants_number and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(
            f"template parameter {parameter.name} takes a whole number",
            field=field,
            code="invalid_template_parameters",
        )
    if not wants_number and not isinstance(value, str):
        raise InvalidInput(
            f"template parameter {parameter.name} takes text",
            field=field,
            code="invalid_template_parameters",
        )
    return value  # type: ignore[return-value]


def _replace(node: Any, values: Mapping[str, int | str]) -> Any:
    if isinstance(node, dict):
        return {k: _replace(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, values) for v in node]
    match = _PLACEHOLDER.match(node) if isinstance(node, str) else None
    return values[match.group(1)] if match else node


def _attr(field: str, op: str, value: object = None) -> dict[str, Any]:
    return {"type": "attribute", "field": field, "op": op, "value": value}


def _param(name: str, label: str, kind: ParameterType, default: int | str) -> TemplateParameter:
    return TemplateParameter(name=name, label=label, type=kind, default=default)


def _built_in(
    key: str, name: str, description: str, category: str, rule: dict[str, Any], *params: Any
) -> SegmentTemplate:
    return SegmentTemplate(
        template_id=f"{BUILT_IN_PREFIX}{key}",
        name=name,
        description=description,
        category=category,
        rule=rule,
        parameters=params,
    )


BUILT_IN_TEMPLATES: tuple[SegmentTemplate, ...] = (
    _built_in(
        "high_value",
        "High-value customers",
        "Net spend at least the amount, with a purchase in the recent window.",
        "rfm",
        {
            "type": "all",
            "children": [
                _attr("net_amount", "gte", "${min_amount}"),
                _attr("recency_days", "lte", "${within_days}"),
            ],
        },
        _param("min_amount", "minimum net spend (minor units)", "money", 500_000),
        _param("within_days", "bought within the last days", "integer", 90),
    ),
    _built_in(
        "at_risk",
        "At risk of churning",
        "Bought before, but nothing for a long time.",
        "rfm",
        {
            "type": "all",
            "children": [
                _attr("order_count", "gte", 1),
                _attr("recency_days", "gte", "${quiet_days}"),
            ],
        },
        _param("quiet_days", "days without a purchase", "integer", 180),
    ),
    _built_in(
        "new_not_bought",
        "New, not yet bought",
        "Registered recently and never ordered: a first-order coupon's audience.",
        "lifecycle",
        {
            "type": "all",
            "children": [
                _attr("registered_at", "within_last_days", "${days}"),
                _attr("order_count", "eq", 0),
            ],
        },
        _param("days", "registered within the last days", "integer", 30),
    ),
    _built_in(
        "repeat_buyers",
        "Repeat buyers",
        "At least this many orders.",
        "rfm",
        _attr("order_count", "gte", "${min_orders}"),
        _param("min_orders", "minimum orders", "integer", 3),
    ),
    _built_in(
        "browsing_not_buying",
        "Browsing, not buying",
        "Viewed products often lately but bought nothing in the same window.",
        "behaviour",
        {
            "type": "all",
            "children": [
                {
                    "type": "behaviour",
                    "kind": "product_view",
                    "op": "at_least",
                    "count": "${min_views}",
                    "within_days": "${days}",
                },
                {"type": "not", "child": _attr("last_purchase_at", "within_last_days", "${days}")},
            ],
        },
        _param("min_views", "minimum product views", "integer", 3),
        _param("days", "within the last days", "integer", 30),
    ),
    _built_in(
        "birthday_month",
        "Birthday in a month",
        "Customers whose birthday falls in the month.",
        "lifecycle",
        _attr("birthday_month", "eq", "${month}"),
        _param("month", "month (1-12)", "integer", 1),
    ),
    _built_in(
        "sms_reachable",
        "Reachable by marketing SMS",
        "Customers who granted SMS marketing consent.",
        "reach",
        _attr("consent.sms.marketing", "is_true"),
    ),
)
BUILT_IN = {template.template_id: template for template in BUILT_IN_TEMPLATES}
