"""Routes to poll and cancel jobs, mounted by every service that runs them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from servicekit.context import TenantDep
from servicekit.errors import NotFound
from servicekit.jobs.model import Job, JobState
from servicekit.jobs.store import JobStore
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep

JobId = Annotated[str, Path(pattern=r"^job_[0-9a-f]{24}$")]
Kind = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]

JOBS = "jobs"


def jobs_router() -> APIRouter:
    """`/jobs`: poll a job, list a tenant's jobs, ask a running one to stop."""
    router = APIRouter(tags=["jobs"])

    @router.get("/jobs/{job_id}")
    async def get_job(job_id: JobId, tenant: TenantDep, runtime: RuntimeDep) -> Job:
        """The job's state and progress; poll until `state` is succeeded, failed or cancelled."""
        job = await JobStore(runtime.db).get(tenant, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", code="job_not_found")
        return job

    @router.get("/jobs")
    async def list_jobs(
        tenant: TenantDep,
        runtime: RuntimeDep,
        page: PageRequestDep,
        kind: Kind = None,
        state: JobState | None = None,
    ) -> Page[Job]:
        """The tenant's jobs, newest first."""
        items, cursor = await JobStore(runtime.db).page(tenant, page, kind=kind, state=state)
        return Page(items=items, next_cursor=cursor)

    @router.post("/jobs/{job_id}/cancel", status_code=202)
    async def cancel_job(job_id: JobId, tenant: TenantDep, runtime: RuntimeDep) -> Job:
        """A queued job is cancelled at once; a running one stops at its next progress
        report (its state turns `cancelled`). A finished job is a 409."""
        return await JobStore(runtime.db).request_cancel(tenant, job_id)

    return router
