"""How each customer event changes what tagging knows of a customer (`FactsRecord`). Pure.

A `FactsRecord` holds exactly what `CustomerFacts` needs, minus tags (tags live in tagging's
own assignment store and are joined at evaluation time). Every function takes the record as
it is (or None when tagging has not heard of the customer) and returns the record as it
should be; the consumer stores the result.

Choices:
- Behaviour is kept as daily counts, bucketed by the UTC calendar day of `occurred_at`, and
  only for the last `BEHAVIOUR_DAYS` days (the longest window a rule may ask about), trimmed
  on every write so a document stays bounded.
- Only the target keys a rule can name (category, product id, store id) are counted.
- Purchase stats are a snapshot; an older snapshot arriving late is ignored.
- A merge copies the duplicate's behaviour into the survivor (behaviour is known only here)
  and keeps the duplicate, marked merged, so an unmerge can take the copy back out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from contracts.customer import (
    BehaviourRecorded,
    ConsentGranted,
    ConsentWithdrawn,
    CustomerProfileChanged,
    CustomerRegistered,
    LifecycleStageChanged,
    OwnerChanged,
    PurchaseStatsChanged,
)
from services.tagging.domain.rules.ast import MAX_BEHAVIOUR_DAYS, BehaviourTargetKey
from services.tagging.domain.rules.catalogue import CustomFieldType
from services.tagging.domain.rules.facts import (
    BehaviourKey,
    CustomerFacts,
    Fact,
    PurchaseFacts,
    TagAssignment,
)
from services.tagging.domain.rules.values import as_utc

BEHAVIOUR_DAYS = MAX_BEHAVIOUR_DAYS
#: Profile attributes of `CustomerProfileChanged` that the catalogue knows by name.
PROFILE_ATTRIBUTES = ("gender", "source_channel", "lifecycle_stage", "owner_id", "birthday_month")
CUSTOM_ATTRIBUTE_PREFIX = "custom_fields."
TARGET_KEYS: frozenset[str] = frozenset(get_args(BehaviourTargetKey))
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")

Daily = dict[date, int]


class FactsRecord(BaseModel):
    """Tagging's read model of one customer, as rules need it."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    customer_id: str
    #: `merged` once folded into `merged_into`: no rule holds for a merged customer.
    state: Literal["active", "merged"] = "active"
    merged_into: str | None = None
    attributes: dict[str, Fact] = Field(default_factory=dict)
    custom: dict[str, Fact] = Field(default_factory=dict)
    stats: PurchaseFacts = Field(default_factory=PurchaseFacts)
    #: `changed_at` of the stats snapshot held, so a late older snapshot is ignored.
    stats_at: datetime | None = None
    consents: dict[str, bool] = Field(default_factory=dict)
    behaviour: dict[BehaviourKey, Daily] = Field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state == "active"

    def facts(self, tags: Mapping[str, TagAssignment] | None = None) -> CustomerFacts:
        return CustomerFacts(
            customer_id=self.customer_id,
            attributes=self.attributes,
            custom=self.custom,
            stats=self.stats,
            tags=dict(tags or {}),
            behaviour=self.behaviour,
            consents=self.consents,
        )


def blank(tenant: str, customer_id: str) -> FactsRecord:
    return FactsRecord(tenant=tenant, customer_id=customer_id)


def _with_attributes(record: FactsRecord, values: Mapping[str, Fact]) -> FactsRecord:
    return record.model_copy(update={"attributes": {**record.attributes, **values}})


def registered(record: FactsRecord, event: CustomerRegistered) -> FactsRecord:
    return _with_attributes(
        record,
        {
            "registered_at": as_utc(event.registered_at),
            "source_channel": event.source_channel,
            "lifecycle_stage": event.lifecycle_stage,
            "owner_id": event.owner_id,
        },
    )


def profile_changed(record: FactsRecord, event: CustomerProfileChanged) -> FactsRecord:
    """The event carries the attributes after the change, custom fields included: a custom
    field absent from it has been cleared."""
    known = {k: v for k, v in event.attributes.items() if k in PROFILE_ATTRIBUTES}
    custom = {
        key.removeprefix(CUSTOM_ATTRIBUTE_PREFIX): custom_value(value)
        for key, value in event.attributes.items()
        if key.startswith(CUSTOM_ATTRIBUTE_PREFIX) and value is not None
    }
    return _with_attributes(record, known).model_copy(update={"custom": custom})


def custom_value(value: object) -> Fact:
    """A custom field's value as rules compare it: dates (sent as ISO text) become instants."""
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value  # type: ignore[return-value]


def custom_type(value: Fact) -> CustomFieldType:
    """The type a rule may test a custom field as, inferred from a value seen in an event
    (tagging does not receive custom field definitions)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, list):
        return "multi_enum"
    return "text"


def custom_types(record: FactsRecord) -> dict[str, CustomFieldType]:
    return {key: custom_type(value) for key, value in record.custom.items()}


def stage_changed(record: FactsRecord, event: LifecycleStageChanged) -> FactsRecord:
    return _with_attributes(record, {"lifecycle_stage": event.to_stage})


def owner_changed(record: FactsRecord, event: OwnerChanged) -> FactsRecord:
    return _with_attributes(record, {"owner_id": event.to_owner})


def consent_key(channel: str, purpose: str) -> str:
    return f"{channel}.{purpose}"


def consent_changed(record: FactsRecord, event: ConsentGranted | ConsentWithdrawn) -> FactsRecord:
    granted = isinstance(event, ConsentGranted)
    consents = {**record.consents, consent_key(event.channel, event.purpose): granted}
    return record.model_copy(update={"consents": consents})


def stats_changed(record: FactsRecord, event: PurchaseStatsChanged) -> FactsRecord:
    at = as_utc(event.changed_at)
    if record.stats_at is not None and at < record.stats_at:
        return record
    stats = PurchaseFacts(
        order_count=event.order_count,
        total_amount=event.total_amount,
        refunded_amount=event.refunded_amount,
        first_purchase_at=event.first_purchase_at,
        last_purchase_at=event.last_purchase_at,
    )
    return record.model_copy(update={"stats": stats, "stats_at": at})


def behaviour_keys(event: BehaviourRecorded) -> list[BehaviourKey]:
    """The series one behaviour event counts in: untargeted, and one per known target key."""
    targeted = [(event.kind, k, v) for k, v in sorted(event.target.items()) if k in TARGET_KEYS]
    return [(event.kind, "", ""), *targeted]


def behaviour_recorded(record: FactsRecord, event: BehaviourRecorded, today: date) -> FactsRecord:
    day = as_utc(event.occurred_at).date()
    behaviour = add_counts(record.behaviour, {key: {day: 1} for key in behaviour_keys(event)})
    return record.model_copy(update={"behaviour": trim(behaviour, today)})


def add_counts(
    base: Mapping[BehaviourKey, Daily], more: Mapping[BehaviourKey, Daily], sign: int = 1
) -> dict[BehaviourKey, Daily]:
    """`base` plus (or with sign=-1 minus) `more`, day by day; counts never go below zero."""
    merged = {key: dict(days) for key, days in base.items()}
    for key, days in more.items():
        series = merged.setdefault(key, {})
        for day, count in days.items():
            series[day] = max(0, series.get(day, 0) + sign * count)
    return _without_zeros(merged)


def trim(behaviour: Mapping[BehaviourKey, Daily], today: date) -> dict[BehaviourKey, Daily]:
    """Only the days a rule can still ask about: the last `BEHAVIOUR_DAYS`, today included."""
    first = today - timedelta(days=BEHAVIOUR_DAYS - 1)
    kept = {key: {d: n for d, n in days.items() if d >= first} for key, days in behaviour.items()}
    return _without_zeros(kept)


def _without_zeros(behaviour: Mapping[BehaviourKey, Daily]) -> dict[BehaviourKey, Daily]:
    cleaned = {key: {d: n for d, n in days.items() if n > 0} for key, days in behaviour.items()}
    return {key: days for key, days in cleaned.items() if days}


def merged_into(survivor: FactsRecord, duplicate: FactsRecord, today: date) -> FactsRecord:
    """The survivor with the duplicate's behaviour added, and consents it lacks. Profile and
    stats are not combined here: the customer service sends the survivor's own events."""
    behaviour = trim(add_counts(survivor.behaviour, duplicate.behaviour), today)
    consents = {**duplicate.consents, **survivor.consents}
    return survivor.model_copy(update={"behaviour": behaviour, "consents": consents})


def mark_merged(duplicate: FactsRecord, survivor_id: str) -> FactsRecord:
    return duplicate.model_copy(update={"state": "merged", "merged_into": survivor_id})


def unmerged_from(survivor: FactsRecord, restored: FactsRecord, today: date) -> FactsRecord:
    """Take back out of the survivor the behaviour the restored customer brought."""
    behaviour = trim(add_counts(survivor.behaviour, restored.behaviour, sign=-1), today)
    return survivor.model_copy(update={"behaviour": behaviour})


def restore(restored: FactsRecord) -> FactsRecord:
    return restored.model_copy(update={"state": "active", "merged_into": None})
