"""Compensation routes (赔付): the tenant's policy, requests (issued at once, or held for
review over a threshold), and the reviewers' approve / reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field

from servicekit.context import Actor, ActorDep, TenantDep
from servicekit.errors import Forbidden
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.coupon.api.deps import Id
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.compensation import (
    Compensation,
    CompensationRequest,
    CompensationState,
)
from services.coupon.domain.compensation_policy import (
    CompensationPolicy,
    StoredPolicy,
)
from services.coupon.service import parts
from services.coupon.service.compensation import CompensationService, compensations_on

router = APIRouter(tags=["compensation"])
#: Who may set the policy and approve or reject held requests.
REVIEWERS = ("compensation_reviewer", "admin")


async def _service(runtime: RuntimeDep) -> CompensationService:
    return compensations_on(runtime, runtime.state.get(parts.DESK) or parts.install(runtime))


CompensationsDep = Annotated[CompensationService, Depends(_service)]


class Approval(BaseModel):
    note: str | None = Field(None, max_length=500)


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _reviewer(actor: Actor, what: str) -> None:
    if not actor.has_role(*REVIEWERS):
        raise Forbidden(f"only {' or '.join(REVIEWERS)} may {what}", code="not_reviewer")


@router.put("/compensation-policy")
async def put_policy(
    body: CompensationPolicy, tenant: TenantDep, actor: ActorDep, service: CompensationsDep
) -> StoredPolicy:
    """Set the tenant's compensation policy (roles compensation_reviewer or admin): the
    batches compensation may use (their face values within [min_value, max_value]; 422
    `value_out_of_range`, `batch_not_found`, `batch_not_compensable` naming
    `batch_ids.<i>`), and the review thresholds: `review_above` (one coupon's value) and
    `period_limits` (count and amount per customer per day, week or month)."""
    _reviewer(actor, "set the compensation policy")
    return await service.set_policy(tenant, body, actor)


@router.get("/compensation-policy")
async def get_policy(tenant: TenantDep, service: CompensationsDep) -> StoredPolicy:
    return await service.policy(tenant)


@router.delete("/compensation-policy", status_code=status.HTTP_204_NO_CONTENT)
async def delete_policy(tenant: TenantDep, actor: ActorDep, service: CompensationsDep) -> None:
    """Stop compensating (roles compensation_reviewer or admin): new requests get 404
    `no_compensation_policy`; held ones can still be reviewed."""
    _reviewer(actor, "remove the compensation policy")
    await service.remove_policy(tenant)


@router.post(
    "/compensations",
    status_code=status.HTTP_201_CREATED,
    responses={202: {"description": "Held for review: `exceeded` lists the thresholds"}},
)
async def request_compensation(
    body: CompensationRequest,
    response: Response,
    tenant: TenantDep,
    actor: ActorDep,
    service: CompensationsDep,
) -> Compensation:
    """Compensate a customer with a coupon straight into the wallet: `value` (the policy's
    batch of that value) or `batch_id`. Within every threshold it is issued at once (201,
    `coupon_id`); over one it is held (202 `pending_review`, `exceeded` says which). The
    same `reference` answers the same compensation. If the batch refuses to issue (409
    sold_out, limit_reached, batch_not_active) nothing is kept."""
    c = await service.request(tenant, body, actor)
    if c.state == CompensationState.PENDING_REVIEW:
        response.status_code = status.HTTP_202_ACCEPTED
    elif c.state != CompensationState.ISSUED:
        response.status_code = status.HTTP_200_OK
    return c


@router.get("/compensations")
async def list_compensations(
    tenant: TenantDep,
    service: CompensationsDep,
    page: PageRequestDep,
    state: CompensationState | None = None,
    customer_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> Page[Compensation]:
    """Newest first; filter by `state` (pending_review for the review queue) and customer."""
    items, cursor = await service.page(tenant, page, state, customer_id)
    return Page(items=items, next_cursor=cursor)


@router.get("/compensations/{compensation_id}")
async def get_compensation(
    compensation_id: Id, tenant: TenantDep, service: CompensationsDep
) -> Compensation:
    return await service.get(tenant, compensation_id)


@router.post("/compensations/{compensation_id}/approve")
async def approve_compensation(
    compensation_id: Id,
    tenant: TenantDep,
    actor: ActorDep,
    service: CompensationsDep,
    body: Approval | None = None,
) -> Compensation:
    """Approve a held request (roles compensation_reviewer or admin; not one's own): the
    coupon is issued. 409 `compensation_state` when it is not pending review; a refusal to
    issue (409 sold_out, ...) leaves it pending with `issue_refusal` noted."""
    _reviewer(actor, "approve a compensation")
    return await service.approve(tenant, compensation_id, actor, body.note if body else None)


@router.post("/compensations/{compensation_id}/reject")
async def reject_compensation(
    compensation_id: Id,
    body: Rejection,
    tenant: TenantDep,
    actor: ActorDep,
    service: CompensationsDep,
) -> Compensation:
    """Reject a held request with a reason (mandatory; roles compensation_reviewer or admin)."""
    _reviewer(actor, "reject a compensation")
    return await service.reject(tenant, compensation_id, actor, body.reason)
