"""Duplicate detection and merge routes (客户合并): candidates, merge, undo, merge records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, StringConstraints

from servicekit.context import Actor, ActorDep, TenantDep
from servicekit.runtime import RuntimeDep
from services.customer.api.customers import CustomerId
from services.customer.api.schemas import CustomerView, Strict
from services.customer.domain.customer import Customer, Identity
from services.customer.domain.merge import (
    DuplicateReason,
    MergeRecord,
    MergeStatus,
    MovedRecords,
)
from services.customer.service.merge import MergeService
from services.customer.store.consents import ConsentStore
from services.customer.store.customers import CustomerRecords
from services.customer.store.merges import MergeStore, RecordMover

router = APIRouter(tags=["merge"])
MergeId = Annotated[str, Path(pattern=r"^mrg_[0-9a-f]{32}$")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


async def merge_service(runtime: RuntimeDep) -> MergeService:
    customers = CustomerRecords(runtime.db, runtime.state["vault"])
    return MergeService(
        runtime.uow,
        customers,
        MergeStore(runtime.db, customers),
        RecordMover(runtime.db),
        ConsentStore(runtime.db),
        unmerge_window_days=runtime.settings.unmerge_window_days,  # type: ignore[attr-defined]
    )


MergesDep = Annotated[MergeService, Depends(merge_service)]


class MergeRequest(Strict):
    merged_id: Annotated[str, StringConstraints(pattern=r"^cus_[0-9a-f]{32}$")]
    reason: Reason


class DuplicateView(BaseModel):
    customer: CustomerView
    reasons: list[DuplicateReason]


class MergeView(BaseModel):
    """A merge as recorded. The before-images are masked like any profile answer; what
    the survivor gained is named, not shown (its values are in the survivor's profile)."""

    id: str
    survivor_id: str
    merged_id: str
    reason: str
    merged_by: str
    merged_at: datetime
    undo_until: datetime
    status: MergeStatus
    undone_at: datetime | None
    undone_by: str | None
    gained_fields: list[str]
    gained_identities: list[Identity]
    gained_custom_fields: list[str]
    moved: MovedRecords
    survivor_before: CustomerView | None
    merged_before: CustomerView | None

    @classmethod
    def of(cls, record: MergeRecord, actor: Actor) -> MergeView:
        return cls(
            **record.model_dump(
                include={
                    "id",
                    "survivor_id",
                    "merged_id",
                    "reason",
                    "merged_by",
                    "merged_at",
                    "undo_until",
                    "status",
                    "undone_at",
                    "undone_by",
                    "moved",
                }
            ),
            gained_fields=sorted(record.gains.fields),
            gained_identities=record.gains.identities,
            gained_custom_fields=sorted(record.gains.custom_fields),
            survivor_before=_view(record.survivor_before, actor),
            merged_before=_view(record.merged_before, actor),
        )


def _view(customer: Customer | None, actor: Actor) -> CustomerView | None:
    return CustomerView.of(customer, actor) if customer else None


@router.get("/customers/{customer_id}/duplicates")
async def find_duplicates(
    customer_id: CustomerId, tenant: TenantDep, actor: ActorDep, merges: MergesDep
) -> list[DuplicateView]:
    """Active customers of the tenant with the same mobile, email or union id, and why."""
    found = await merges.duplicates(tenant, customer_id)
    return [
        DuplicateView(customer=CustomerView.of(d.customer, actor), reasons=d.reasons) for d in found
    ]


@router.post("/customers/{customer_id}/merge", status_code=status.HTTP_201_CREATED)
async def merge_customers(
    customer_id: CustomerId,
    body: MergeRequest,
    tenant: TenantDep,
    actor: ActorDep,
    merges: MergesDep,
) -> MergeView:
    """Merge `merged_id` into this customer (the survivor) in one transaction; publishes
    `customer.merged.v1`. Same customer, an inactive one or a concurrent merge: 409."""
    record = await merges.merge(
        tenant, customer_id, body.merged_id, reason=body.reason, actor=actor
    )
    return MergeView.of(record, actor)


@router.post("/merges/{merge_id}/undo")
async def undo_merge(
    merge_id: MergeId, tenant: TenantDep, actor: ActorDep, merges: MergesDep
) -> MergeView:
    """Restore both customers as they were (unmerge) within the configured window;
    publishes `customer.unmerged.v1`."""
    return MergeView.of(await merges.undo(tenant, merge_id, actor=actor), actor)


@router.get("/merges/{merge_id}")
async def get_merge(
    merge_id: MergeId, tenant: TenantDep, actor: ActorDep, merges: MergesDep
) -> MergeView:
    return MergeView.of(await merges.get(tenant, merge_id), actor)


@router.get("/customers/{customer_id}/merges")
async def customer_merges(
    customer_id: CustomerId, tenant: TenantDep, actor: ActorDep, merges: MergesDep
) -> list[MergeView]:
    """Every merge the customer took part in, as survivor or as the merged one, newest first."""
    return [MergeView.of(r, actor) for r in await merges.of_customer(tenant, customer_id)]
