"""Segment builds: a job that answers the segment's rule from the audience engine, freezes the
answer as a snapshot, and brings the stored live membership in line with it.

1. The engine is caught up and evaluates the rule over every customer (milliseconds to a
   second, however large the tenant).
2. The member list is written as a snapshot (chunks of ids), unless a previous run of this job
   already wrote it.
3. The customers on whom the stored membership and the answer disagree are re-evaluated
   through the live path (`memberships.reevaluate`) in transactions of `CHUNK`: their facts are
   read from the store, so what is announced is decided by the source of truth even if the
   engine lagged, and a concurrent event for the same customer conflicts rather than races.
4. The build is recorded on the segment and `tagging.segment_built` published.

Rerunning after a crash starts again at 1 and finds less to do at 3: the work is idempotent.
Time-based segments are rebuilt every `segment_refresh_interval_seconds` by `refresh_due`."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from contracts.tagging import SegmentBuilt, SegmentMemberJoined
from servicekit.clock import utcnow
from servicekit.jobs import JobContext, JobFailed, JobHandler, submit
from servicekit.jobs.model import Job
from servicekit.runtime import Runtime, Worker
from servicekit.unit_of_work import Tx
from services.tagging.domain.segments import LastBuild, Segment
from services.tagging.service.audience import keeper_of
from services.tagging.service.memberships import reevaluate
from services.tagging.settings import TaggingSettings
from services.tagging.store.memberships import MembershipStore
from services.tagging.store.segments import SegmentStore
from services.tagging.store.snapshots import Snapshot, SnapshotStore

SEGMENT_BUILD = "tagging.segment_build"
#: Customers re-evaluated per transaction.
CHUNK = 500
MEMBER_PAGE = 10_000
SCHEDULER = "segment-refresh"
log = logging.getLogger("tagging.segment_builds")


async def request_build(runtime: Runtime, segment: Segment, *, by: str) -> Job:
    return await submit(
        runtime,
        segment.tenant,
        SEGMENT_BUILD,
        params={"segment_id": segment.segment_id},
        created_by=by,
    )


async def run_build(ctx: JobContext) -> dict[str, Any]:
    runtime = ctx.runtime
    if runtime is None:
        raise RuntimeError("segment builds run inside the tagging service's runtime")
    segments = SegmentStore(runtime.db)
    segment = await segments.get(ctx.tenant, ctx.params["segment_id"])
    if segment is None:
        raise JobFailed(f"segment {ctx.params['segment_id']} no longer exists")
    now = utcnow()
    rules = {s.segment_id: s.rule for s in await segments.all(ctx.tenant)}
    audience = await keeper_of(runtime).current(ctx.tenant)
    members = audience.evaluate(segment.rule, now, rules).customer_ids()
    snapshot = await _snapshot(runtime, ctx, segment, members, now)
    stored = await _stored_members(runtime, ctx.tenant, segment.segment_id)
    disagreeing = sorted(stored.symmetric_difference(members))
    ctx.set_total(len(disagreeing))
    joined = left = 0
    for at in range(0, len(disagreeing), CHUNK):
        chunk = disagreeing[at : at + CHUNK]
        events = await runtime.uow.run(
            lambda tx, c=chunk: reevaluate(tx, ctx.tenant, c, utcnow())  # type: ignore[misc]
        )
        mine = [e for e in events if e.segment_id == segment.segment_id]
        joined += sum(1 for e in mine if isinstance(e, SegmentMemberJoined))
        left += len(mine) - sum(1 for e in mine if isinstance(e, SegmentMemberJoined))
        await ctx.progress(processed=len(chunk), succeeded=len(chunk), checkpoint=at + len(chunk))
    build = LastBuild(
        build_id=ctx.job.id,
        snapshot_id=snapshot.snapshot_id,
        rule_version=segment.version,
        count=len(members),
        joined=joined,
        left=left,
        built_at=now,
    )
    await runtime.uow.run(lambda tx: _record(tx, segment, build, runtime))
    keep = _settings(runtime).segment_snapshots_kept
    await SnapshotStore(runtime.db).prune(ctx.tenant, segment.segment_id, keep=max(1, keep))
    return build.model_dump(mode="json")


async def _snapshot(
    runtime: Runtime, ctx: JobContext, segment: Segment, members: list[str], now: datetime
) -> Snapshot:
    snapshots = SnapshotStore(runtime.db)
    snapshot_id = f"snp_{ctx.job.id.removeprefix('job_')}"
    existing = await snapshots.get(ctx.tenant, snapshot_id)
    if existing is not None:
        return existing  # written by an earlier run of this job
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        tenant=ctx.tenant,
        segment_id=segment.segment_id,
        build_id=ctx.job.id,
        rule_version=segment.version,
        count=len(members),
        taken_at=now,
    )
    await snapshots.write(snapshot, members)
    return snapshot


async def _stored_members(runtime: Runtime, tenant: str, segment_id: str) -> set[str]:
    store, found, after = MembershipStore(runtime.db), set[str](), None
    while page := await store.member_ids(tenant, segment_id, after=after, limit=MEMBER_PAGE):
        found.update(page)
        after = page[-1]
    return found


async def _record(tx: Tx, segment: Segment, build: LastBuild, runtime: Runtime) -> None:
    interval = _settings(runtime).segment_refresh_interval_seconds
    due = build.built_at + timedelta(seconds=interval) if segment.time_based else None
    await SegmentStore(tx.db).record_build(
        segment.tenant, segment.segment_id, build, refresh_due_at=due, session=tx.session
    )
    event = SegmentBuilt(
        segment_id=segment.segment_id,
        build_id=build.build_id,
        snapshot_id=build.snapshot_id,
        rule_version=build.rule_version,
        member_count=build.count,
        joined=build.joined,
        left=build.left,
        built_at=build.built_at,
    )
    await tx.emit(event, tenant=segment.tenant)


def _settings(runtime: Runtime) -> TaggingSettings:
    settings = runtime.settings
    return settings if isinstance(settings, TaggingSettings) else TaggingSettings()


async def refresh_due(runtime: Runtime) -> None:
    """Submit a build for each time-based segment whose refresh is due. Claiming pushes the
    due time forward, so of several replicas exactly one submits it."""
    while True:
        try:
            await _refresh_round(runtime)
        except Exception:
            log.exception("segment refresh round failed; the next round retries")
        await asyncio.sleep(min(30.0, _settings(runtime).segment_refresh_interval_seconds))


async def _refresh_round(runtime: Runtime) -> None:
    interval = _settings(runtime).segment_refresh_interval_seconds
    store = SegmentStore(runtime.db)
    while segment := await store.claim_due_refresh(utcnow(), hold_seconds=interval):
        await request_build(runtime, segment, by=SCHEDULER)


HANDLERS: dict[str, JobHandler] = {SEGMENT_BUILD: run_build}
REFRESH_WORKER = Worker(name="segment-refresh", run=refresh_due)
