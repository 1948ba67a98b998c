"""Handover routes: start the bulk reassignment of a leaving or moving advisor's customers."""

from __future__ import annotations

from typing import Annotated, Self

from fastapi import APIRouter, Response, status
from pydantic import Field, StringConstraints, model_validator

from servicekit.context import ActorDep, TenantDep
from servicekit.jobs import Job, submit
from servicekit.runtime import RuntimeDep
from services.customer.api.schemas import StaffId, Strict
from services.customer.service.handover import HANDOVER, HandoverPlan

router = APIRouter(tags=["handover"])
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class StartHandover(Strict):
    """`to_owner` for one colleague, or `team` for round-robin among several."""

    from_owner: StaffId
    to_owner: StaffId | None = None
    team: Annotated[list[StaffId], Field(min_length=1, max_length=100)] | None = None
    #: "resigned", "transferred" or free text; kept in each customer's owner history.
    reason: Reason = "resigned"

    @model_validator(mode="after")
    def _one_destination(self) -> Self:
        if (self.to_owner is None) == (self.team is None):
            raise ValueError("give either to_owner or team")
        team = self.successors()
        if self.from_owner in team:
            raise ValueError("the leaving advisor cannot take over their own customers")
        if len(set(team)) != len(team):
            raise ValueError("the team names someone twice")
        return self

    def successors(self) -> list[str]:
        return [self.to_owner] if self.to_owner is not None else list(self.team or [])


@router.post("/handovers", status_code=status.HTTP_202_ACCEPTED)
async def start_handover(
    body: StartHandover,
    tenant: TenantDep,
    actor: ActorDep,
    runtime: RuntimeDep,
    response: Response,
) -> Job:
    """Reassign every active customer of `from_owner` (离职/在职继承) as a job of kind
    `customer.handover`; poll `Location` (`/jobs/{id}`). Each customer gets an owner change
    with reason `handover:<reason>` and `customer.owner_changed.v1`; one reassigned by
    someone else meanwhile is skipped and listed in the job's errors."""
    plan = HandoverPlan(from_owner=body.from_owner, team=body.successors(), reason=body.reason)
    job = await submit(runtime, tenant, HANDOVER, params=plan.model_dump(), created_by=actor.id)
    response.headers["Location"] = f"/jobs/{job.id}"
    return job
