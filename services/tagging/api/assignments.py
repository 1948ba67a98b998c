"""Tagging customers: manual tag and untag, a customer's tags, a tag's customers, batch."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from servicekit.clock import utcnow
from servicekit.context import ActorDep, TenantDep
from servicekit.jobs import Job, submit
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.tagging.domain.tags import (
    Assignment,
    check_assignable,
    check_expiry,
    check_value,
)
from services.tagging.service.batch import BATCH_TAGGING, BatchPlan
from services.tagging.service.tags import TagService
from services.tagging.store.assignments import AssignmentStore
from services.tagging.store.tags import TagStore

router = APIRouter(tags=["tagging"])

CustomerPath = Annotated[str, Path(pattern=r"^cus_[0-9a-f]{32}$")]
TagPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{1,62}$")]
CustomerId = Annotated[str, StringConstraints(pattern=r"^cus_[0-9a-f]{32}$")]
Value = Annotated[str, StringConstraints(min_length=1, max_length=64)] | int | float | None
MAX_BATCH = 100_000
#: 100,000 quoted customer ids of 36 characters, with room for the rest of the body.
MAX_BATCH_BYTES = 5 * 1024 * 1024
#: The batch route takes a larger body than the kit's default.
BODY_LIMITS = {"/tags/{tag_id}/batch": MAX_BATCH_BYTES}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TagCustomer(Strict):
    value: Value = None
    expires_at: AwareDatetime | None = None


class BatchBody(TagCustomer):
    customer_ids: Annotated[list[CustomerId], Field(min_length=1, max_length=MAX_BATCH)]
    action: Literal["assign", "remove"] = "assign"


async def _service(runtime: RuntimeDep) -> TagService:
    return TagService(runtime.uow)


ServiceDep = Annotated[TagService, Depends(_service)]


@router.put("/customers/{customer_id}/tags/{tag_id}")
async def tag_customer(
    customer_id: CustomerPath,
    tag_id: TagPath,
    body: TagCustomer,
    tenant: TenantDep,
    actor: ActorDep,
    tags: ServiceDep,
) -> Assignment:
    """Put the tag on the customer (手动打标签), or change its value or expiry. The value must
    suit the tag's value kind; the expiry defaults from the tag's policy. Sends
    `tagging.tag_assigned.v1` when something changed."""
    return await tags.tag_customer(
        tenant, customer_id, tag_id, value=body.value, expires_at=body.expires_at, by=actor.id
    )


@router.delete("/customers/{customer_id}/tags/{tag_id}", status_code=status.HTTP_204_NO_CONTENT)
async def untag_customer(
    customer_id: CustomerPath, tag_id: TagPath, tenant: TenantDep, actor: ActorDep, tags: ServiceDep
) -> None:
    """Take the tag off (any source, a rule's included: recorded in the history); sends
    `tagging.tag_removed.v1` with reason `untagged`."""
    await tags.untag_customer(tenant, customer_id, tag_id, actor.id)


@router.get("/customers/{customer_id}/tags")
async def customer_tags(
    customer_id: CustomerPath, tenant: TenantDep, tags: ServiceDep
) -> list[Assignment]:
    """The customer's current tags with source, who, when and expiry (expired ones left out)."""
    return await tags.customer_tags(tenant, customer_id)


@router.get("/tags/{tag_id}/customers")
async def tag_customers(
    tag_id: TagPath, tenant: TenantDep, runtime: RuntimeDep, page: PageRequestDep
) -> Page[Assignment]:
    """The customers who have the tag now, in customer id order."""
    items, cursor = await AssignmentStore(runtime.db).customers_with(tenant, tag_id, page, utcnow())
    return Page(items=items, next_cursor=cursor)


@router.post("/tags/{tag_id}/batch", status_code=status.HTTP_202_ACCEPTED)
async def batch_tag(
    tag_id: TagPath,
    body: BatchBody,
    tenant: TenantDep,
    actor: ActorDep,
    runtime: RuntimeDep,
    response: Response,
) -> Job:
    """Assign or remove the tag for up to 100,000 customers (批量打标签) as a job of kind
    `tagging.batch`; poll `Location`. Unknown customers are listed in the job's errors."""
    plan = _plan(await TagStore(runtime.db).get(tenant, tag_id), tag_id, body)
    ids = list(dict.fromkeys(body.customer_ids))
    job = await submit(
        runtime,
        tenant,
        BATCH_TAGGING,
        params=plan.model_dump(mode="json"),
        created_by=actor.id,
        total=len(ids),
        attachment={"customer_ids": ids},
    )
    response.headers["Location"] = f"/jobs/{job.id}"
    return job


def _plan(tag: object, tag_id: str, body: BatchBody) -> BatchPlan:

    checked = check_assignable(tag, tag_id)
    if body.action == "remove":
        return BatchPlan(tag_id=tag_id, action="remove")
    now = utcnow()
    check_expiry(body.expires_at, now)
    expires_at: datetime | None = body.expires_at or checked.expiry.expires_at(now)
    value = check_value(checked, body.value)
    return BatchPlan(tag_id=tag_id, action="assign", value=value, expires_at=expires_at)
