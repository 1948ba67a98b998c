"""`CustomerFacts`: what tagging knows of one customer, as the rule evaluators read it.

Values are normalised when the facts are built: datetimes are aware UTC, numbers are numbers,
a multi-enum is a list of strings. A value that is absent (or None) is *missing*; see
`evaluate` for what a condition on a missing value means.

Behaviour is kept as daily counts per (kind, target key, target value): one behaviour event
adds one to `(kind, "", "")` and one to `(kind, key, value)` for each key of its target, so
an untargeted condition reads one series. Days are calendar days in the zone of the `now`
the rule is evaluated with (the tenant's zone, in production).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.tagging.domain.rules.catalogue import CONSENT_PREFIX, CUSTOM_PREFIX, STAT_FIELDS
from services.tagging.domain.rules.values import as_utc

Fact = str | bool | int | float | datetime | list[str] | None
#: (behaviour kind, target key or "", target value or "")
BehaviourKey = tuple[str, str, str]


class PurchaseFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_count: int = 0
    total_amount: int = 0
    refunded_amount: int = 0
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None

    @field_validator("first_purchase_at", "last_purchase_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @property
    def net_amount(self) -> int:
        return self.total_amount - self.refunded_amount

    @property
    def refund_rate(self) -> float:
        # The customer service's formula: share of the money paid that was refunded.
        if self.total_amount <= 0:
            return 0.0
        return round(self.refunded_amount / self.total_amount, 4)

    def recency_days(self, now: datetime) -> int | None:
        if self.last_purchase_at is None:
            return None
        return max(0, (now - self.last_purchase_at).days)


class TagAssignment(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str | int | float | None = None
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class CustomerFacts(BaseModel):
    customer_id: str
    #: Built-in profile attributes by catalogue name (gender, owner_id, registered_at...).
    attributes: dict[str, Fact] = Field(default_factory=dict)
    #: Custom field values by key (without the `custom.` prefix).
    custom: dict[str, Fact] = Field(default_factory=dict)
    stats: PurchaseFacts = Field(default_factory=PurchaseFacts)
    tags: dict[str, TagAssignment] = Field(default_factory=dict)
    behaviour: dict[BehaviourKey, dict[date, int]] = Field(default_factory=dict)
    #: "<channel>.<purpose>" -> granted (True) or withdrawn (False); absent = never recorded.
    consents: dict[str, bool] = Field(default_factory=dict)

    @field_validator("attributes", "custom")
    @classmethod
    def _utc(cls, values: dict[str, Fact]) -> dict[str, Fact]:
        # Aware datetimes only, so comparisons with rule bounds never mix naive and aware.
        return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in values.items()}


StatReader = Callable[[PurchaseFacts, datetime], Fact]
STAT_READERS: Mapping[str, StatReader] = {
    "order_count": lambda s, _: s.order_count,
    "total_amount": lambda s, _: s.total_amount,
    "net_amount": lambda s, _: s.net_amount,
    "refund_rate": lambda s, _: s.refund_rate,
    "first_purchase_at": lambda s, _: s.first_purchase_at,
    "last_purchase_at": lambda s, _: s.last_purchase_at,
    "recency_days": lambda s, now: s.recency_days(now),
}
assert set(STAT_READERS) == STAT_FIELDS


def read_field(facts: CustomerFacts, name: str, now: datetime) -> Fact:
    """The value of catalogue field `name` for this customer; None when missing."""
    if name.startswith(CUSTOM_PREFIX):
        return facts.custom.get(name.removeprefix(CUSTOM_PREFIX))
    if name.startswith(CONSENT_PREFIX):
        return facts.consents.get(name.removeprefix(CONSENT_PREFIX))
    if name in STAT_READERS:
        return STAT_READERS[name](facts.stats, now)
    return facts.attributes.get(name)
