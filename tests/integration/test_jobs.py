"""Jobs against the real embedded store: a job runs to its end with progress that can be
polled, a crashed or stopped runner's job is resumed from its checkpoint by another without
doing an item twice, a held lease keeps other runners off, cancel stops a job, and a failing
handler fails its job without stopping the runner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.clock import utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.jobs import (
    JOB_INDEXES,
    JOBS,
    ItemError,
    Job,
    JobContext,
    JobFailed,
    JobHandler,
    JobRunner,
    JobState,
    JobStore,
)
from servicekit.mongo import Document, ensure_indexes, make_mongo_client
from servicekit.pagination import PageRequest
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
KIND = "test.count"
POLL = 0.05


@pytest.fixture
async def db(infra, unique: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client = make_mongo_client(infra.mongodb_uri, app_name="test-jobs")
    database = client[f"t_{unique}_jobs"]
    await ensure_indexes(database, JOB_INDEXES)
    yield database
    await client.close()


@pytest.fixture
def store(db: AsyncDatabase[Document]) -> JobStore:
    return JobStore(db)


def counting(
    db: AsyncDatabase[Document], *, gate: Callable[[int], Awaitable[None]] | None = None
) -> JobHandler:
    """Does items `0..total-1` after the checkpoint; each item is a document whose id
    refuses a second insert, so an item done twice fails the job."""

    async def handler(ctx: JobContext) -> dict[str, Any]:
        total = int(ctx.params["total"])
        ctx.set_total(total)
        start = -1 if ctx.checkpoint is None else int(ctx.checkpoint)
        for item in range(start + 1, total):
            if ctx.cancelled:
                break
            if gate is not None:
                await gate(item)
            try:
                await db["done"].insert_one({"_id": f"{ctx.job.id}:{item}", "job": ctx.job.id})
            except DuplicateKeyError:
                raise JobFailed(f"item {item} done twice") from None
            failed = item % 10 == 3
            errors = [ItemError(item=f"item {item}", reason="ends in 3")] if failed else []
            await ctx.progress(
                processed=1,
                succeeded=int(not failed),
                failed=int(failed),
                errors=errors,
                checkpoint=item,
            )
        return {"counted": total}

    return handler


class Gate:
    """Holds a handler before item `at` until opened (or forever)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def __call__(self, item: int) -> None:
        if item == self.at:
            self.reached.set()
            await self.opened.wait()


@contextlib.asynccontextmanager
async def running(runner: JobRunner, store: JobStore) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.loop(store))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def finished(store: JobStore, job: Job, *, within: float = 30) -> Job:
    done = await eventually(
        lambda: store.get(job.tenant, job.id),
        until=lambda j: j is not None and j.state not in {JobState.QUEUED, JobState.RUNNING},
        within=within,
    )
    assert done is not None
    return done


async def done_items(db: AsyncDatabase[Document], job: Job) -> int:
    return await db["done"].count_documents({"job": job.id})


async def test_a_job_runs_to_its_end_with_progress_that_can_be_polled(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    gate = Gate(at=450)
    runner = JobRunner({KIND: counting(db, gate=gate)}, poll_seconds=POLL)
    job = await store.create(f"t{unique}", KIND, params={"total": 600}, created_by="ops-1")
    assert job.state == JobState.QUEUED and job.processed == 0

    async with running(runner, store):
        midway = await eventually(
            lambda: store.get(job.tenant, job.id),
            until=lambda j: j is not None and j.processed >= 200,
        )
        assert midway is not None
        assert midway.state == JobState.RUNNING and midway.total == 600
        assert midway.started_at is not None and midway.lease_until is not None
        assert midway.processed < 600
        gate.opened.set()
        done = await finished(store, job)

    assert done.state == JobState.SUCCEEDED, done.failure
    assert (done.processed, done.succeeded, done.failed) == (600, 540, 60)
    assert done.result == {"counted": 600} and done.finished_at is not None
    assert len(done.errors) == 60 and done.errors[0] == ItemError(item="item 3", reason="ends in 3")
    assert done.checkpoint == 599 and done.attempts == 1
    assert await done_items(db, job) == 600


async def test_errors_kept_are_capped_at_a_hundred(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    runner = JobRunner({KIND: counting(db)}, poll_seconds=POLL)
    job = await store.create(f"t{unique}", KIND, params={"total": 1200}, created_by="ops-1")
    async with running(runner, store):
        done = await finished(store, job)
    assert done.failed == 120 and len(done.errors) == 100


async def test_a_crashed_runners_job_is_resumed_from_its_checkpoint(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    job = await store.create(f"t{unique}", KIND, params={"total": 20}, created_by="ops-1")
    # As a runner that died after items 0..6 leaves it: running, lease lapsed.
    for item in range(7):
        await db["done"].insert_one({"_id": f"{job.id}:{item}", "job": job.id})
    await db[JOBS].update_one(
        {"_id": job.id},
        {
            "$set": {
                "state": "running",
                "owner": "dead-runner",
                "lease_until": utcnow() - timedelta(seconds=1),
                "checkpoint": 6,
                "processed": 7,
                "succeeded": 6,
                "failed": 1,
                "attempts": 1,
            }
        },
    )
    runner = JobRunner({KIND: counting(db)}, poll_seconds=POLL)
    async with running(runner, store):
        done = await finished(store, job)
    assert done.state == JobState.SUCCEEDED, done.failure
    assert (done.processed, done.succeeded, done.failed) == (20, 18, 2)
    assert done.attempts == 2
    assert await done_items(db, job) == 20


async def test_a_stopped_runners_job_is_taken_over_without_doing_an_item_twice(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    gate = Gate(at=250)  # never opened: runner A stops there
    first = JobRunner({KIND: counting(db, gate=gate)}, poll_seconds=POLL, owner="runner-a")
    second = JobRunner({KIND: counting(db)}, poll_seconds=POLL, owner="runner-b")
    job = await store.create(f"t{unique}", KIND, params={"total": 400}, created_by="ops-1")

    async with running(first, store) as task_a:
        await asyncio.wait_for(gate.reached.wait(), 30)
        task_a.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task_a
    handed_back = await store.get(job.tenant, job.id)
    assert handed_back is not None
    assert handed_back.state == JobState.RUNNING and handed_back.checkpoint == 249
    assert handed_back.processed == 250

    async with running(second, store):
        done = await finished(store, job)
    assert done.state == JobState.SUCCEEDED, done.failure
    assert done.processed == 400 and done.attempts == 2
    assert await done_items(db, job) == 400


async def test_a_held_lease_keeps_other_runners_off(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    gate = Gate(at=5)
    holder = JobRunner({KIND: counting(db, gate=gate)}, poll_seconds=POLL, lease_seconds=0.6)
    rival = JobRunner({KIND: counting(db)}, poll_seconds=POLL, lease_seconds=0.6)
    job = await store.create(f"t{unique}", KIND, params={"total": 10}, created_by="ops-1")
    async with running(holder, store):
        await asyncio.wait_for(gate.reached.wait(), 30)
        first = await store.get(job.tenant, job.id)
        assert first is not None and first.lease_until is not None
        async with running(rival, store):
            # Several lease periods pass; the holder's renewals keep the rival out.
            await eventually(
                lambda: store.get(job.tenant, job.id),
                until=lambda j: j.lease_until > first.lease_until + timedelta(seconds=1.5),
            )
            gate.opened.set()
            done = await finished(store, job)
    assert done.state == JobState.SUCCEEDED and done.attempts == 1
    assert await done_items(db, job) == 10


async def test_cancel_stops_a_running_job_and_a_queued_one_at_once(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    tenant = f"t{unique}"
    queued = await store.create(tenant, KIND, params={"total": 5}, created_by="ops-1")
    cancelled = await store.request_cancel(tenant, queued.id)
    assert cancelled.state == JobState.CANCELLED and cancelled.finished_at is not None

    gate = Gate(at=300)
    runner = JobRunner({KIND: counting(db, gate=gate)}, poll_seconds=POLL)
    job = await store.create(tenant, KIND, params={"total": 100_000}, created_by="ops-1")
    async with running(runner, store):
        await asyncio.wait_for(gate.reached.wait(), 30)
        asked = await store.request_cancel(tenant, job.id)
        assert asked.state == JobState.RUNNING and asked.cancel_requested
        gate.opened.set()
        done = await finished(store, job)
    assert done.state == JobState.CANCELLED
    assert 300 <= done.processed < 100_000
    with pytest.raises(Conflict):
        await store.request_cancel(tenant, job.id)
    with pytest.raises(NotFound):
        await store.request_cancel("someone-else", job.id)


async def test_a_failing_handler_fails_its_job_and_the_runner_goes_on(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    async def refuses(ctx: JobContext) -> dict[str, Any]:
        raise JobFailed("the file is gone")

    async def breaks(ctx: JobContext) -> dict[str, Any]:
        raise RuntimeError("bug with internal detail")

    runner = JobRunner(
        {"test.refuses": refuses, "test.breaks": breaks, KIND: counting(db)}, poll_seconds=POLL
    )
    tenant = f"t{unique}"
    refused = await store.create(tenant, "test.refuses", params={}, created_by="ops-1")
    broken = await store.create(tenant, "test.breaks", params={}, created_by="ops-1")
    fine = await store.create(tenant, KIND, params={"total": 3}, created_by="ops-1")
    async with running(runner, store):
        refused_done = await finished(store, refused)
        broken_done = await finished(store, broken)
        fine_done = await finished(store, fine)
    assert refused_done.state == JobState.FAILED and refused_done.failure == "the file is gone"
    assert broken_done.state == JobState.FAILED
    assert broken_done.failure and "internal detail" not in broken_done.failure
    assert fine_done.state == JobState.SUCCEEDED


async def test_a_runner_claims_only_kinds_it_handles_and_jobs_list_by_tenant(
    db: AsyncDatabase[Document], store: JobStore, unique: str
) -> None:
    tenant = f"t{unique}"
    other = await store.create(tenant, "test.other", params={}, created_by="ops-1")
    mine = [
        await store.create(tenant, KIND, params={"total": 1}, created_by="ops-1") for _ in range(3)
    ]
    await store.create(f"x{unique}", KIND, params={"total": 1}, created_by="ops-1")
    runner = JobRunner({KIND: counting(db)}, poll_seconds=POLL)
    async with running(runner, store):
        for job in mine:
            await finished(store, job)
    untouched = await store.get(tenant, other.id)
    assert untouched is not None and untouched.state == JobState.QUEUED

    first, cursor = await store.page(tenant, PageRequest(limit=2))
    assert [j.id for j in first] == [mine[2].id, mine[1].id] and cursor
    rest, end = await store.page(tenant, PageRequest(after={"_id": first[-1].id}, limit=2))
    assert [j.id for j in rest] == [mine[0].id, other.id] and end is None
    queued, _ = await store.page(tenant, PageRequest(), state=JobState.QUEUED)
    assert [j.id for j in queued] == [other.id]
    assert await store.get(f"x{unique}", other.id) is None
