"""The worker that claims jobs, runs their handlers and keeps their leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from servicekit.context import current_tenant
from servicekit.errors import DomainError
from servicekit.jobs.model import (
    LEASE_SECONDS,
    POLL_OVERRIDE,
    POLL_SECONDS,
    WAKEUP,
    ItemError,
    Job,
    JobFailed,
    JobState,
    new_job_id,
)
from servicekit.jobs.progress import ProgressBuffer, ProgressFlush
from servicekit.jobs.store import JobStore
from servicekit.mongo import Document
from servicekit.runtime import Runtime, Worker

log = logging.getLogger("servicekit.jobs")

JOBS = "jobs"


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
