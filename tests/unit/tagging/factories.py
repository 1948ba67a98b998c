"""Readable test data for the rule language: customers, contexts and an evaluator pair."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from services.tagging.domain.rules.ast import Node
from services.tagging.domain.rules.catalogue import (
    CustomField,
    TagSpec,
    TagValueKind,
    build_catalogue,
)
from services.tagging.domain.rules.compile import compile_rule
from services.tagging.domain.rules.evaluate import matches
from services.tagging.domain.rules.facts import CustomerFacts, PurchaseFacts, TagAssignment
from services.tagging.domain.rules.validate import RuleContext

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()

CUSTOM_FIELDS = (
    CustomField(key="nickname", type="text"),
    CustomField(key="shoe_size", type="number"),
    CustomField(key="wedding_day", type="date"),
    CustomField(key="skin_type", type="enum", options=("dry", "oily", "normal")),
    CustomField(key="interests", type="multi_enum", options=("golf", "wine", "tea", "yoga")),
    CustomField(key="vip_club", type="boolean"),
)
CATALOGUE = build_catalogue(CUSTOM_FIELDS)
TAGS = {
    "vip": TagSpec("vip", "VIP"),
    "level": TagSpec("level", "Level", TagValueKind.ENUM, frozenset({"gold", "silver"})),
    "score": TagSpec("score", "Score", TagValueKind.NUMBER),
}

Evaluator = Callable[[Node, CustomerFacts, datetime, Mapping[str, bool]], bool]


def reference(rule: Node, c: CustomerFacts, now: datetime, m: Mapping[str, bool]) -> bool:
    return matches(rule, c, now, m)


def compiled(rule: Node, c: CustomerFacts, now: datetime, m: Mapping[str, bool]) -> bool:
    return compile_rule(rule)(c, now, m)


EVALUATORS = {"reference": reference, "compiled": compiled}


def customer(
    *,
    stats: dict[str, Any] | None = None,
    tags: dict[str, TagAssignment] | None = None,
    behaviour: dict[tuple[str, str, str], dict[date, int]] | None = None,
    consents: dict[str, bool] | None = None,
    custom: dict[str, Any] | None = None,
    **attributes: Any,
) -> CustomerFacts:
    return CustomerFacts(
        customer_id="cus_1",
        attributes=attributes,
        custom=custom or {},
        stats=PurchaseFacts(**(stats or {})),
        tags=tags or {},
        behaviour=behaviour or {},
        consents=consents or {},
    )


def context(segment_rules: Mapping[str, Node] | None = None, **extra: Any) -> RuleContext:
    return RuleContext(CATALOGUE, TAGS, segment_rules or {}, **extra)
