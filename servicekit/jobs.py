"""Long operations as jobs that can be polled (batch tagging, segment builds, bulk issue,
imports).

A route records a job (`submit`) and answers 202 at once; a `JobRunner` worker of the same
service claims it, runs the handler registered for its kind and records progress. Every
write a runner makes is conditional on still owning the job (`owner` and a lease it renews),
so a runner that crashed or stalled is taken over by another once its lease lapses, and the
new one resumes from the last checkpoint instead of from zero. Progress is written in
batches: the store manages only a few hundred conditional updates a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from bson import ObjectId
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.context import TenantDep, current_tenant
from servicekit.errors import Conflict, DomainError, NotFound
from servicekit.mongo import Document, Index
from servicekit.pagination import Page, PageRequest, PageRequestDep, next_cursor
from servicekit.runtime import Runtime, RuntimeDep, Worker

JOBS = "jobs"
ATTACHMENTS = "job_attachments"
#: Errors kept per job: enough to fix a file, small enough for one document.
MAX_ERRORS = 100
#: Progress is written after this many items or this many seconds, whichever comes first.
FLUSH_ITEMS = 200
FLUSH_SECONDS = 1.0
#: A runner looks for queued jobs this often when nothing wakes it (a job submitted by
#: another replica). `Runtime.state[POLL_OVERRIDE]` changes it while running (tests).
POLL_SECONDS = 2.0
POLL_OVERRIDE = "jobs.poll_seconds"
#: How long a claim lasts without renewal; the runner renews it every third of that.
LEASE_SECONDS = 30.0
#: Where a running `JobRunner` leaves the event that wakes it, for `submit` to set.
WAKEUP = "jobs.wakeup"
#: Attachments outlive any sane job; the handler deletes its own when it finishes.
ATTACHMENT_RETENTION = timedelta(days=7)

JOB_INDEXES = [
    Index(JOBS, [("state", 1), ("kind", 1), ("lease_until", 1)], name="claimable"),
    Index(JOBS, [("tenant", 1), ("_id", -1)], name="by_tenant"),
    Index(
        ATTACHMENTS,
        [("created_at", 1)],
        expire_after_seconds=int(ATTACHMENT_RETENTION.total_seconds()),
        name="attachment_ttl",
    ),
]
log = logging.getLogger("servicekit.jobs")


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class ItemError(BaseModel):
    item: str
    reason: str


class Job(BaseModel):
    """A job as its caller sees it; `checkpoint` is where a resumed run starts again."""

    id: str
    tenant: str
    kind: str
    state: JobState
    params: dict[str, Any] = Field(default_factory=dict)
    total: int | None = None
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: list[ItemError] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    failure: str | None = None
    cancel_requested: bool = False
    attempts: int = 0
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_until: datetime | None = None
    checkpoint: Any = None

    @classmethod
    def from_doc(cls, doc: Document) -> Job:
        return cls.model_validate({**doc, "id": doc["_id"]})


class JobFailed(Exception):
    """Raised by a handler to fail its job with a reason meant for the caller."""


def new_job_id() -> str:
    # An ObjectId's hex sorts by creation time, so listings page newest first by `_id`.
    return f"job_{ObjectId()}"


# --------------------------------------------------------------------------- the store


class JobStore:
    """Every query on jobs. Writes of a runner name it as `owner`: one that lost its lease
    (another runner took the job over) changes nothing."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._jobs = db[JOBS]
        self._attachments = db[ATTACHMENTS]

    async def create(
        self,
        tenant: str,
        kind: str,
        *,
        params: dict[str, Any],
        created_by: str,
        total: int | None = None,
        job_id: str | None = None,
    ) -> Job:
        job = Job(
            id=job_id or new_job_id(),
            tenant=tenant,
            kind=kind,
            state=JobState.QUEUED,
            params=params,
            total=total,
            created_by=created_by,
            created_at=utcnow(),
        )
        await self._jobs.insert_one(_to_doc(job))
        return job

    async def get(self, tenant: str, job_id: str) -> Job | None:
        doc = await self._jobs.find_one({"_id": job_id, "tenant": tenant})
        return Job.from_doc(doc) if doc else None

    async def page(
        self,
        tenant: str,
        page: PageRequest,
        *,
        kind: str | None = None,
        state: JobState | None = None,
    ) -> tuple[list[Job], str | None]:
        """Newest first."""
        query: Document = {"tenant": tenant}
        if kind is not None:
            query["kind"] = kind
        if state is not None:
            query["state"] = str(state)
        if page.after:
            query["_id"] = {"$lt": str(page.after_value("_id"))}
        docs = await self._jobs.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        return [Job.from_doc(d) for d in docs[: page.limit]], next_cursor(docs, page.limit, "_id")

    async def request_cancel(self, tenant: str, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one is asked to stop."""
        at = utcnow()
        queued = {"_id": job_id, "tenant": tenant, "state": str(JobState.QUEUED)}
        finish = {"state": str(JobState.CANCELLED), "finished_at": at, "cancel_requested": True}
        doc = await self._jobs.find_one_and_update(
            queued, {"$set": finish}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            running = {"_id": job_id, "tenant": tenant, "state": str(JobState.RUNNING)}
            doc = await self._jobs.find_one_and_update(
                running,
                {"$set": {"cancel_requested": True}},
                return_document=ReturnDocument.AFTER,
            )
        if doc is not None:
            return Job.from_doc(doc)
        job = await self.get(tenant, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", code="job_not_found")
        raise Conflict(f"the job has already {job.state}", code="job_finished")

    # --- a runner's writes -------------------------------------------------------------

    async def claim(self, owner: str, kinds: list[str], lease: timedelta) -> Job | None:
        """Take the oldest queued job of these kinds, or a running one whose runner's lease
        lapsed (it crashed): one conditional update, so two runners never share a job."""
        at = utcnow()
        doc = await self._jobs.find_one_and_update(
            {
                "kind": {"$in": kinds},
                "$or": [
                    {"state": str(JobState.QUEUED)},
                    {"state": str(JobState.RUNNING), "lease_until": {"$lt": at}},
                ],
            },
            {
                "$set": {"state": str(JobState.RUNNING), "owner": owner, "lease_until": at + lease},
                "$inc": {"attempts": 1},
            },
            sort=[("_id", 1)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        if doc.get("started_at") is None:
            await self._jobs.update_one({"_id": doc["_id"]}, {"$set": {"started_at": at}})
            doc["started_at"] = at
        return Job.from_doc(doc)

    async def progress(
        self, job_id: str, owner: str, flush: ProgressFlush, lease: timedelta
    ) -> bool | None:
        """Add the counts, keep the errors and checkpoint, renew the lease. Returns whether a
        cancel was requested, or None when this runner no longer owns the job."""
        update: Document = {
            "$set": {"lease_until": utcnow() + lease},
            "$inc": {
                "processed": flush.processed,
                "succeeded": flush.succeeded,
                "failed": flush.failed,
            },
        }
        if flush.has_checkpoint:
            update["$set"]["checkpoint"] = flush.checkpoint
        if flush.total is not None:
            update["$set"]["total"] = flush.total
        if flush.errors:
            update["$push"] = {"errors": {"$each": [e.model_dump() for e in flush.errors]}}
        doc = await self._jobs.find_one_and_update(
            {"_id": job_id, "owner": owner, "state": str(JobState.RUNNING)},
            update,
            projection={"cancel_requested": 1},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else bool(doc.get("cancel_requested"))

    async def finish(
        self,
        job_id: str,
        owner: str,
        state: JobState,
        *,
        result: dict[str, Any] | None = None,
        failure: str | None = None,
    ) -> bool:
        done = {"state": str(state), "finished_at": utcnow(), "lease_until": None}
        done |= {"result": result, "failure": failure}
        outcome = await self._jobs.update_one(
            {"_id": job_id, "owner": owner, "state": str(JobState.RUNNING)}, {"$set": done}
        )
        return outcome.modified_count == 1

    async def release(self, job_id: str, owner: str) -> None:
        """Give a job back at once (the runner stops): another takes it without waiting
        for the lease to lapse."""
        await self._jobs.update_one(
            {"_id": job_id, "owner": owner, "state": str(JobState.RUNNING)},
            {"$set": {"lease_until": utcnow(), "owner": None}},
        )

    # --- attachments: inputs too large or too private for `params` -----------------------

    async def attach(self, job_id: str, tenant: str, content: Document) -> None:
        doc = {"_id": job_id, "tenant": tenant, "content": content, "created_at": utcnow()}
        await self._attachments.insert_one(doc)

    async def attachment(self, job_id: str) -> Document | None:
        doc = await self._attachments.find_one({"_id": job_id})
        return doc["content"] if doc else None

    async def drop_attachment(self, job_id: str) -> None:
        await self._attachments.delete_one({"_id": job_id})


def _to_doc(job: Job) -> Document:
    doc = job.model_dump(mode="json", exclude={"id"})
    doc |= {"_id": job.id, "created_at": job.created_at, "errors": []}
    return doc


# --------------------------------------------------------------------------- progress


class ProgressFlush(BaseModel):
    """Progress gathered since the last write."""

    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: list[ItemError] = Field(default_factory=list)
    total: int | None = None
    checkpoint: Any = None
    has_checkpoint: bool = False

    @property
    def empty(self) -> bool:
        return not (self.processed or self.errors or self.has_checkpoint or self.total is not None)


class ProgressBuffer:
    """Pure: gathers progress, keeps the error list within `MAX_ERRORS` across runs, and
    says when a write is due (every `FLUSH_ITEMS` items or `FLUSH_SECONDS`)."""

    def __init__(self, *, errors_kept: int, now: float) -> None:
        self.errors_kept = errors_kept
        self.pending = ProgressFlush()
        self.last_flush = now

    def add(
        self,
        *,
        processed: int,
        succeeded: int,
        failed: int,
        errors: list[ItemError],
        checkpoint: Any,
        has_checkpoint: bool,
    ) -> None:
        p = self.pending
        p.processed += processed
        p.succeeded += succeeded
        p.failed += failed
        room = MAX_ERRORS - self.errors_kept - len(p.errors)
        p.errors.extend(errors[: max(room, 0)])
        if has_checkpoint:
            p.checkpoint, p.has_checkpoint = checkpoint, True

    def due(self, now: float) -> bool:
        return self.pending.processed >= FLUSH_ITEMS or now - self.last_flush >= FLUSH_SECONDS

    def take(self, now: float) -> ProgressFlush:
        taken, self.pending = self.pending, ProgressFlush()
        self.errors_kept += len(taken.errors)
        self.last_flush = now
        return taken


class JobLost(Exception):
    """This runner no longer owns the job (its lease lapsed and another took it over)."""


class JobContext:
    """What a handler sees of its job: the input, where to resume, and how to report."""

    def __init__(
        self, job: Job, store: JobStore, owner: str, lease: timedelta, runtime: Runtime | None
    ) -> None:
        self.job = job
        self.store = store
        self.owner = owner
        self.lease = lease
        #: The service's runtime when run by its worker, to build the handler's use cases.
        self.runtime = runtime
        self.cancelled = job.cancel_requested
        self._buffer = ProgressBuffer(errors_kept=len(job.errors), now=time.monotonic())

    @property
    def tenant(self) -> str:
        return self.job.tenant

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    @property
    def checkpoint(self) -> Any:
        """Where the last run stopped (None on a first run): a handler resumes after it."""
        return self.job.checkpoint

    @property
    def total(self) -> int | None:
        return self.job.total

    def set_total(self, total: int) -> None:
        self.job.total = total
        self._buffer.pending.total = total

    async def progress(
        self,
        *,
        processed: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        errors: list[ItemError] | None = None,
        checkpoint: Any = None,
    ) -> None:
        """Count items done since the last call; `checkpoint` (when given) must describe a
        state in which every counted item is done, so a resumed run neither skips nor
        repeats one. Written in batches; raises `JobLost` when another runner took over."""
        self._buffer.add(
            processed=processed,
            succeeded=succeeded,
            failed=failed,
            errors=errors or [],
            checkpoint=checkpoint,
            has_checkpoint=checkpoint is not None,
        )
        if self._buffer.due(time.monotonic()):
            await self.flush()

    async def flush(self) -> None:
        flush = self._buffer.take(time.monotonic())
        cancel = await self.store.progress(self.job.id, self.owner, flush, self.lease)
        if cancel is None:
            raise JobLost(self.job.id)
        self.cancelled = self.cancelled or cancel
        self.job.processed += flush.processed
        if flush.has_checkpoint:
            self.job.checkpoint = flush.checkpoint


JobHandler = Callable[[JobContext], Awaitable[dict[str, Any]]]


# --------------------------------------------------------------------------- the runner


class JobRunner:
    """Runs jobs of the kinds it has handlers for, one at a time. Any replica may run one;
    claims keep them apart. A failing handler fails its job, never the runner."""

    def __init__(
        self,
        handlers: dict[str, JobHandler],
        *,
        poll_seconds: float = POLL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        owner: str | None = None,
    ) -> None:
        self.handlers = handlers
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = owner or f"{socket.gethostname()}:{id(self):x}"
        self.wakeup = asyncio.Event()
        #: Jobs finished and loop faults, for tests and probes.
        self.finished = 0
        self.faults = 0

    def worker(self, name: str = "jobs") -> Worker:
        return Worker(name=name, run=self.run)

    async def run(self, runtime: Runtime) -> None:
        runtime.state[WAKEUP] = self.wakeup
        await self.loop(JobStore(runtime.db), runtime)

    async def loop(self, store: JobStore, runtime: Runtime | None = None) -> None:
        """Claim and run jobs until cancelled."""
        while True:
            ran = await self.round(store, runtime)
            if not ran:
                await self._idle(runtime)

    async def round(self, store: JobStore, runtime: Runtime | None = None) -> bool:
        """Run one claimable job; False when there was none (or the store failed)."""
        try:
            job = await store.claim(self.owner, sorted(self.handlers), self.lease)
        except Exception:
            self.faults += 1
            log.exception("claiming a job failed; the next round retries")
            return False
        if job is None:
            return False
        try:
            await self.execute(job, store, runtime)
        except Exception:
            self.faults += 1
            log.exception("running a job failed; its lease lapses and it is retried")
        return True

    async def _idle(self, runtime: Runtime | None) -> None:
        poll = self.poll_seconds
        if runtime is not None:
            poll = float(runtime.state.get(POLL_OVERRIDE, poll))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), poll)
        self.wakeup.clear()

    async def execute(self, job: Job, store: JobStore, runtime: Runtime | None) -> None:
        ctx = JobContext(job, store, self.owner, self.lease, runtime)
        work = asyncio.create_task(self._handle(ctx), name=f"job:{job.id}")
        heartbeat = asyncio.create_task(self._heartbeat(ctx, work), name=f"lease:{job.id}")
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            if not _stopping():
                # The heartbeat stopped the handler: another runner owns the job now.
                log.warning("job taken over by another runner", extra={"job_id": job.id})
                return
            # The runner stops (shutdown): hand the job back at once with its progress.
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            with contextlib.suppress(Exception):
                await ctx.flush()
            with contextlib.suppress(Exception):
                await store.release(job.id, self.owner)
            raise
        finally:
            heartbeat.cancel()
        self.finished += 1

    async def _handle(self, ctx: JobContext) -> None:
        # The tenant scopes the handler's events and log lines, as a request's would.
        current_tenant.set(ctx.tenant)
        handler = self.handlers[ctx.job.kind]
        try:
            outcome = await self._outcome(ctx, handler)
            await ctx.flush()
        except JobLost:
            log.warning("job taken over by another runner", extra={"job_id": ctx.job.id})
            return
        except Exception:
            log.exception("recording a job's end failed", extra={"job_id": ctx.job.id})
            return
        state, result, failure = outcome
        await ctx.store.finish(ctx.job.id, self.owner, state, result=result, failure=failure)

    async def _outcome(
        self, ctx: JobContext, handler: JobHandler
    ) -> tuple[JobState, dict[str, Any] | None, str | None]:
        if ctx.cancelled:
            return JobState.CANCELLED, None, None
        try:
            result = await handler(ctx)
        except JobLost:
            raise
        except (JobFailed, DomainError) as exc:
            return JobState.FAILED, None, str(exc)
        except Exception:
            log.exception("job handler failed", extra={"job_id": ctx.job.id})
            return JobState.FAILED, None, "the job failed unexpectedly; the error is logged"
        return (JobState.CANCELLED if ctx.cancelled else JobState.SUCCEEDED), result, None

    async def _heartbeat(self, ctx: JobContext, work: asyncio.Task[None]) -> None:
        """Renew the lease while the handler runs (it may be slow between progress calls);
        stop it if another runner took the job over."""
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                empty = ProgressFlush()
                cancel = await ctx.store.progress(ctx.job.id, self.owner, empty, self.lease)
            except Exception:
                log.warning("renewing a job's lease failed", extra={"job_id": ctx.job.id})
                continue
            if cancel is None:
                work.cancel()
                return
            ctx.cancelled = ctx.cancelled or cancel


def _stopping() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# --------------------------------------------------------------------------- submitting


async def submit(
    runtime: Runtime,
    tenant: str,
    kind: str,
    *,
    params: dict[str, Any],
    created_by: str,
    total: int | None = None,
    attachment: Document | None = None,
) -> Job:
    """Record a job (with its attachment first, so no runner sees a job without it) and
    wake this process's runner."""
    store = JobStore(runtime.db)
    job_id = new_job_id()
    if attachment is not None:
        await store.attach(job_id, tenant, attachment)
    job = await store.create(
        tenant, kind, params=params, created_by=created_by, total=total, job_id=job_id
    )
    wakeup = runtime.state.get(WAKEUP)
    if isinstance(wakeup, asyncio.Event):
        wakeup.set()
    return job


# --------------------------------------------------------------------------- the API

JobId = Annotated[str, Path(pattern=r"^job_[0-9a-f]{24}$")]
Kind = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]


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
