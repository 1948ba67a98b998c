"""Behaviour events (行为明细): what a customer did, on what, and when.

Pure: no I/O. The rules here decide what may be stored; the store keeps an event for
`RETENTION` after it happened and forgets it then (a TTL index)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.customer.domain.values import CustomerRef, ExternalId, Timestamp, future_problem

#: How long behaviour is kept after it happened (PIPL: no longer than the purpose needs).
RETENTION = timedelta(days=180)
#: The most events one batch may carry; a tracker export is sent in several.
MAX_BATCH = 1000


class BehaviourKind(StrEnum):
    PAGE_VIEW = "page_view"
    PRODUCT_VIEW = "product_view"
    SEARCH = "search"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    FAVOURITE = "favourite"
    SHARE = "share"
    FEEDBACK = "feedback"
    STORE_VISIT = "store_visit"
    COUPON_VIEW = "coupon_view"


Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class BehaviourTarget(BaseModel):
    """What the behaviour was about. A closed set of keys with bounded sizes, so a tracker
    cannot turn the collection into a dump of arbitrary payloads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: Short | None = None
    category: Short | None = None
    page: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    keyword: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    store_id: Short | None = None

    def as_map(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class BehaviourReport(BaseModel):
    """One behaviour as a reporter (app, mini-program, tracker, store system) sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BehaviourKind
    occurred_at: Timestamp
    target: BehaviourTarget = Field(default_factory=BehaviourTarget)
    #: The reporter's own id for this event: sending it again is recognised as a duplicate.
    #: Without one, an id is generated and a resent event is stored twice.
    behaviour_id: ExternalId | None = None


class BatchedBehaviourReport(BehaviourReport):
    """A behaviour in a batch, which may mix customers."""

    customer_id: CustomerRef


class BehaviourEvent(BaseModel):
    """A behaviour as stored."""

    behaviour_id: str
    customer_id: str
    kind: BehaviourKind
    occurred_at: datetime
    target: dict[str, str] = Field(default_factory=dict)
    recorded_at: datetime


def new_behaviour_id() -> str:
    return f"beh_{uuid.uuid4().hex}"


def occurred_at_problem(
    occurred_at: datetime, *, now: datetime, retention: timedelta = RETENTION
) -> str | None:
    """Why `occurred_at` cannot be stored, or None. A time in the future is a broken clock;
    one older than the retention would be deleted at once by the TTL index."""
    if problem := future_problem(occurred_at, now=now):
        return problem
    if occurred_at < now - retention:
        return f"is older than the retention of {retention.days} days"
    return None


def to_event(report: BehaviourReport, *, customer_id: str, recorded_at: datetime) -> BehaviourEvent:
    return BehaviourEvent(
        behaviour_id=report.behaviour_id or new_behaviour_id(),
        customer_id=customer_id,
        kind=report.kind,
        occurred_at=report.occurred_at,
        target=report.target.as_map(),
        recorded_at=recorded_at,
    )


# ----------------------------------------------------------------------- batch outcome


class ItemStatus(StrEnum):
    RECORDED = "recorded"
    #: Its behaviour id was seen before (earlier, or earlier in the same batch): not stored
    #: again, and not an error.
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class ItemError(BaseModel):
    field: str
    reason: str
    #: Stable and machine-readable, as a problem document's `code`.
    code: str = "invalid"


class ItemOutcome(BaseModel):
    index: int
    status: ItemStatus
    behaviour_id: str | None = None
    errors: list[ItemError] = Field(default_factory=list)


class BatchOutcome(BaseModel):
    """What happened to each item of a batch, in the order sent."""

    recorded: int
    duplicates: int
    rejected: int
    items: list[ItemOutcome]

    @classmethod
    def of(cls, items: list[ItemOutcome]) -> BatchOutcome:
        items = sorted(items, key=lambda i: i.index)
        count = {s: sum(1 for i in items if i.status == s) for s in ItemStatus}
        return cls(
            recorded=count[ItemStatus.RECORDED],
            duplicates=count[ItemStatus.DUPLICATE],
            rejected=count[ItemStatus.REJECTED],
            items=items,
        )


def rejected(index: int, *errors: ItemError) -> ItemOutcome:
    return ItemOutcome(index=index, status=ItemStatus.REJECTED, errors=list(errors))
