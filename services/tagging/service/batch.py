"""Batch tagging (批量打标签) as a job: chunks of customers, each chunk one transaction with
bulk writes and one outbox entry holding all its events; resumable after the last chunk."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from servicekit.clock import utcnow
from servicekit.jobs import ItemError, JobContext, JobFailed, JobHandler
from servicekit.unit_of_work import Tx
from services.tagging.domain.tags import Assignment, Source, TagValue, unchanged
from services.tagging.service.assignments import record_assigned, record_removed
from services.tagging.store.assignments import AssignmentStore

BATCH_TAGGING = "tagging.batch"
#: Customers per transaction: large enough that bulk writes pay off, small enough to keep
#: one outbox entry well under the 16 MB document limit.
CHUNK = 500
UNKNOWN = "unknown customer"


class BatchPlan(BaseModel):
    tag_id: str
    action: Literal["assign", "remove"]
    value: TagValue = None
    expires_at: datetime | None = None


class ChunkOutcome(BaseModel):
    changed: int = 0
    unchanged: int = 0
    unknown: list[str] = []


async def run_batch(ctx: JobContext) -> dict[str, Any]:
    if ctx.runtime is None:
        raise RuntimeError("batch tagging runs inside the tagging service's runtime")
    plan = BatchPlan.model_validate(ctx.params)
    content = await ctx.store.attachment(ctx.job.id)
    if content is None:
        raise JobFailed("the job's customer list is gone")
    ids: list[str] = content["customer_ids"]
    if ctx.total is None:
        ctx.set_total(len(ids))
    start = int(ctx.checkpoint or 0)
    changed = 0
    for at in range(start, len(ids), CHUNK):
        if ctx.cancelled:
            break
        chunk = ids[at : at + CHUNK]
        outcome = await ctx.runtime.uow.run(lambda tx, c=chunk: _chunk(tx, ctx, plan, c))
        changed += outcome.changed
        errors = [ItemError(item=c, reason=UNKNOWN) for c in outcome.unknown]
        ok = len(chunk) - len(errors)
        await ctx.progress(
            processed=len(chunk),
            succeeded=ok,
            failed=len(errors),
            errors=errors,
            checkpoint=at + len(chunk),
        )
    await ctx.store.drop_attachment(ctx.job.id)
    return {"changed": changed}


async def _chunk(tx: Tx, ctx: JobContext, plan: BatchPlan, chunk: list[str]) -> ChunkOutcome:
    store = AssignmentStore(tx.db)
    known = await store.known_customers(ctx.tenant, chunk, session=tx.session)
    existing = await store.of_tag(ctx.tenant, plan.tag_id, chunk, session=tx.session)
    unknown = [c for c in chunk if c not in known]
    now = utcnow()
    if plan.action == "remove":
        gone = [existing[c] for c in chunk if c in known and c in existing]
        await store.delete_many(ctx.tenant, plan.tag_id, [a.customer_id for a in gone], tx.session)
        await record_removed(tx, gone, reason="untagged", by=ctx.job.created_by, at=now)
        return ChunkOutcome(changed=len(gone), unknown=unknown)
    new = [
        _assignment(ctx, plan, c, now)
        for c in chunk
        if c in known and not unchanged(existing.get(c), plan.value, plan.expires_at)
    ]
    await store.put_many(new, tx.session)
    await record_assigned(tx, new)
    return ChunkOutcome(changed=len(new), unknown=unknown)


def _assignment(ctx: JobContext, plan: BatchPlan, customer_id: str, now: datetime) -> Assignment:
    return Assignment(
        tenant=ctx.tenant,
        customer_id=customer_id,
        tag_id=plan.tag_id,
        value=plan.value,
        source=Source.BATCH,
        assigned_by=ctx.job.created_by,
        assigned_at=now,
        expires_at=plan.expires_at,
    )


HANDLERS: dict[str, JobHandler] = {BATCH_TAGGING: run_batch}
