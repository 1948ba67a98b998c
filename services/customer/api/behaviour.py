"""Behaviour routes (行为明细): ingest one event or a batch, list a customer's recent ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from servicekit.context import TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.customer.domain.behaviour import (
    MAX_BATCH,
    BatchedBehaviourReport,
    BatchOutcome,
    BehaviourEvent,
    BehaviourKind,
    BehaviourReport,
    ItemError,
    ItemOutcome,
    ItemStatus,
    rejected,
)
from services.customer.domain.values import CUSTOMER_ID_PATTERN
from services.customer.service.behaviour import BehaviourService, Indexed
from services.customer.store.behaviour import BehaviourStore
from services.customer.store.customers import CustomerStore

router = APIRouter(tags=["behaviour"])
CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN)]
_ITEM = TypeAdapter(BatchedBehaviourReport)


async def behaviour_service(runtime: RuntimeDep) -> BehaviourService:
    customers = CustomerStore(runtime.db, runtime.state.get("vault"))
    retention = timedelta(days=runtime.settings.behaviour_retention_days)  # type: ignore[attr-defined]
    return BehaviourService(runtime.uow, BehaviourStore(runtime.db), customers, retention=retention)


BehaviourDep = Annotated[BehaviourService, Depends(behaviour_service)]
#: A full batch of 1,000 events with long keywords can pass the default 1 MiB.
BODY_LIMITS = {"/behaviour/batch": 2 * 1024 * 1024}


class BehaviourBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Each item has the shape of one event plus its `customer_id` (BatchedBehaviourReport).
    #: Items are validated one by one, so a bad item is reported, not fatal.
    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


@router.post("/customers/{customer_id}/behaviour", status_code=status.HTTP_201_CREATED)
async def record_behaviour(
    customer_id: CustomerId,
    body: BehaviourReport,
    tenant: TenantDep,
    behaviour: BehaviourDep,
    response: Response,
) -> ItemOutcome:
    """Record one behaviour event; publishes `customer.behaviour_recorded.v1`.

    201 when recorded; 200 with `status: duplicate` when its `behaviour_id` was recorded
    before (nothing is stored or published again). 404 for an unknown customer, 422 for a
    time in the future or older than the retention."""
    outcome = await behaviour.record(tenant, customer_id, body)
    if outcome.status == ItemStatus.DUPLICATE:
        response.status_code = status.HTTP_200_OK
    return outcome


@router.post("/behaviour/batch")
async def record_behaviour_batch(
    body: BehaviourBatch, tenant: TenantDep, behaviour: BehaviourDep
) -> BatchOutcome:
    """Record up to 1,000 behaviour events, for any customers, in one transaction.

    Partial acceptance: every valid item is stored (and published), every other one is
    reported in `items` by its index with the field and reason (unknown kind, malformed
    value, unknown customer, time out of range); a repeated `behaviour_id` is reported as
    `duplicate`, not as an error. The answer is 200 whatever the mix: read `rejected`.
    More than 1,000 events, or a body that is not `{"events": [objects]}`, is a 422 and
    nothing is stored."""
    items, refused = _parse(body.events)
    return await behaviour.record_batch(tenant, items, refused)


@router.get("/customers/{customer_id}/behaviour")
async def list_behaviour(
    customer_id: CustomerId,
    tenant: TenantDep,
    behaviour: BehaviourDep,
    page: PageRequestDep,
    kind: BehaviourKind | None = None,
    since: Annotated[AwareDatetime | None, Query(description="occurred at or after")] = None,
) -> Page[BehaviourEvent]:
    """A customer's behaviour, newest first, optionally of one kind and since a time."""
    items, cursor = await behaviour.recent(tenant, customer_id, page, kind=kind, since=since)
    return Page(items=items, next_cursor=cursor)


def _parse(raw: list[dict[str, Any]]) -> tuple[list[Indexed], list[ItemOutcome]]:
    items: list[Indexed] = []
    refused: list[ItemOutcome] = []
    for index, candidate in enumerate(raw):
        try:
            items.append((index, _ITEM.validate_python(candidate)))
        except ValidationError as exc:
            refused.append(rejected(index, *_item_errors(exc)))
    return items, refused


def _item_errors(exc: ValidationError) -> list[ItemError]:
    return [
        ItemError(
            field=".".join(str(p) for p in e["loc"]) or "event",
            reason=e["msg"],
            code="validation_failed",
        )
        for e in exc.errors()
    ]
