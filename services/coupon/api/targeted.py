"""Targeted issue (定向投放): a batch issued to every member of a segment, as a job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from servicekit.context import ActorDep, TenantDep
from servicekit.jobs import Job
from servicekit.runtime import RuntimeDep
from services.coupon.api.deps import Id
from services.coupon.service import targeted

router = APIRouter(tags=["targeted issues"])


class TargetedIssueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: Annotated[str, Field(pattern=r"^seg_[0-9a-f]{32}$")]
    #: A frozen member list of one build of the segment (recommended: the members do not
    #: move while the job runs); without it, the live members.
    snapshot_id: Annotated[str | None, Field(pattern=r"^snp_[0-9A-Za-z_-]{1,64}$")] = None


@router.post("/batches/{batch_id}/targeted-issues", status_code=status.HTTP_202_ACCEPTED)
async def issue_to_segment(
    batch_id: Id,
    body: TargetedIssueBody,
    tenant: TenantDep,
    actor: ActorDep,
    runtime: RuntimeDep,
    response: Response,
) -> Job:
    """Issue the batch to every member of a tagging segment (or one of its snapshots), as a
    job (kind `coupon.targeted_issue`; poll `Location`, cancel with `/jobs/{id}/cancel`).
    Each member gets at most one coupon of this issue (channel `targeted`); stock and
    per-customer limits apply, and members refused are counted by reason in the job's
    `result` (`issued`, `refused`: {sold_out: n, limit_reached: n, ...}). A job stopped by
    a crash or restart resumes where it was, without issuing twice. 404 when the batch or
    segment does not exist, 409 `batch_not_active`, 503 when the tagging service cannot be
    reached."""
    job = await targeted.start(
        runtime, tenant, batch_id, body.segment_id, body.snapshot_id, actor.id
    )
    response.headers["Location"] = f"/jobs/{job.id}"
    return job
