"""The field catalogue: which fields a rule may test, their types and the operators each allows.

Field names are flat and dotted: built-in profile attributes and purchase stats by name
(`gender`, `total_amount`), a tenant's custom fields as `custom.<key>`, consents as
`consent.<channel>.<purpose>`. The value lists mirror the customer service's enums; tagging
keeps its own copy because services share contracts, not code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from services.tagging.domain.rules.ast import AttributeOp, TagOp


class ValueType(StrEnum):
    TEXT = "text"
    ENUM = "enum"
    NUMBER = "number"
    #: Integer minor units (分); compared like numbers, written as integers only.
    MONEY = "money"
    DATETIME = "datetime"
    MULTI_ENUM = "multi_enum"
    BOOLEAN = "boolean"


_ORDERED: frozenset[AttributeOp] = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between"})
OPS_BY_TYPE: Mapping[ValueType, frozenset[AttributeOp]] = {
    ValueType.TEXT: frozenset({"eq", "ne", "in", "not_in", "exists"}),
    ValueType.ENUM: frozenset({"eq", "ne", "in", "not_in", "exists"}),
    ValueType.NUMBER: _ORDERED | {"exists"},
    ValueType.MONEY: _ORDERED | {"exists"},
    ValueType.DATETIME: frozenset(
        {"before", "after", "between", "within_last_days", "not_within_last_days", "exists"}
    ),
    ValueType.MULTI_ENUM: frozenset({"contains", "contains_any", "contains_all", "exists"}),
    ValueType.BOOLEAN: frozenset({"is_true", "is_false", "exists"}),
}

GENDERS = ("female", "male", "other", "unknown")
SOURCE_CHANNELS = ("store", "mini_program", "app", "partner", "import", "web")
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "at_risk", "churned")
CONSENT_CHANNELS = ("sms", "call", "wechat", "email", "push", "subscription_message")
CONSENT_PURPOSES = ("marketing", "service", "data_processing")
BEHAVIOUR_KINDS = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "favourite",
    "share",
    "feedback",
    "store_visit",
    "coupon_view",
)
#: Fields read from the purchase stats rather than the profile attributes.
STAT_FIELDS = frozenset(
    {
        "order_count",
        "total_amount",
        "net_amount",
        "refund_rate",
        "first_purchase_at",
        "last_purchase_at",
        "recency_days",
    }
)
CUSTOM_PREFIX = "custom."
CONSENT_PREFIX = "consent."


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: ValueType
    label: str
    options: frozenset[str] = frozenset()


CustomFieldType = Literal["text", "number", "date", "enum", "multi_enum", "boolean"]
_CUSTOM_TYPES: Mapping[str, ValueType] = {
    "text": ValueType.TEXT,
    "number": ValueType.NUMBER,
    "date": ValueType.DATETIME,
    "enum": ValueType.ENUM,
    "multi_enum": ValueType.MULTI_ENUM,
    "boolean": ValueType.BOOLEAN,
}


@dataclass(frozen=True)
class CustomField:
    """A tenant's custom field definition, as far as rules need it."""

    key: str
    type: CustomFieldType
    options: tuple[str, ...] = ()
    label: str | None = None


class TagValueKind(StrEnum):
    FLAG = "flag"
    ENUM = "enum"
    NUMBER = "number"


TAG_OPS: Mapping[TagValueKind, frozenset[TagOp]] = {
    TagValueKind.FLAG: frozenset({"has"}),
    TagValueKind.ENUM: frozenset({"has", "eq", "ne", "in", "not_in"}),
    TagValueKind.NUMBER: frozenset({"has", "eq", "ne", "gt", "gte", "lt", "lte", "between"}),
}


@dataclass(frozen=True)
class TagSpec:
    """What a rule needs of a tag: its kind of value and, for enum tags, the options."""

    tag_id: str
    name: str
    value_kind: TagValueKind = TagValueKind.FLAG
    options: frozenset[str] = frozenset()


def _enum(name: str, label: str, options: Iterable[str]) -> FieldSpec:
    return FieldSpec(name, ValueType.ENUM, label, frozenset(options))


_BUILT_IN: tuple[FieldSpec, ...] = (
    _enum("gender", "gender", GENDERS),
    _enum("source_channel", "source channel", SOURCE_CHANNELS),
    _enum("lifecycle_stage", "lifecycle stage", LIFECYCLE_STAGES),
    FieldSpec("owner_id", ValueType.TEXT, "owner"),
    FieldSpec("registered_at", ValueType.DATETIME, "registered"),
    FieldSpec("birthday_month", ValueType.NUMBER, "birthday month"),
    FieldSpec("order_count", ValueType.NUMBER, "orders"),
    FieldSpec("total_amount", ValueType.MONEY, "total spent"),
    FieldSpec("net_amount", ValueType.MONEY, "net spent"),
    FieldSpec("refund_rate", ValueType.NUMBER, "refund rate"),
    FieldSpec("first_purchase_at", ValueType.DATETIME, "first purchase"),
    FieldSpec("last_purchase_at", ValueType.DATETIME, "last purchase"),
    FieldSpec("recency_days", ValueType.NUMBER, "days since last purchase"),
)


def _consent_fields() -> Iterable[FieldSpec]:
    for channel in CONSENT_CHANNELS:
        for purpose in CONSENT_PURPOSES:
            label = f"{channel} {purpose} consent"
            yield FieldSpec(f"{CONSENT_PREFIX}{channel}.{purpose}", ValueType.BOOLEAN, label)


def _custom_spec(custom: CustomField) -> FieldSpec:
    return FieldSpec(
        name=f"{CUSTOM_PREFIX}{custom.key}",
        type=_CUSTOM_TYPES[custom.type],
        label=custom.label or custom.key,
        options=frozenset(custom.options),
    )


@dataclass(frozen=True)
class Catalogue:
    """The fields one tenant's rules may test, and the behaviour kinds they may count."""

    fields: Mapping[str, FieldSpec]
    behaviour_kinds: frozenset[str] = field(default=frozenset(BEHAVIOUR_KINDS))

    def get(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)


def build_catalogue(custom_fields: Iterable[CustomField] = ()) -> Catalogue:
    specs = [*_BUILT_IN, *_consent_fields(), *map(_custom_spec, custom_fields)]
    return Catalogue(fields={spec.name: spec for spec in specs})
