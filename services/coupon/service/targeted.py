"""Targeted issue (定向投放): a batch issued to every member of a tagging segment, as a job
with progress.

The job reads the segment's members in customer id order from the tagging service, a claim
round's worth at a time (`claim_flush_size`, in pages of `targeted_page_size`), and issues
them through the claim desk in one go (one transaction and one `insert_many` per group)
while the next group is read, with channel `targeted` and the reference
`targeted:{issue_id}:{customer_id}`. Stock and per-customer limits apply as to any grant;
members refused are counted by reason. After each group the checkpoint records the cursor
and the tally; a job resumed after a crash or a restart starts from it, and the members of
the group that was under way are issued again with the same references, which answer the
coupons already made instead of new ones: nobody gets two, and the tally stays exact."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from servicekit.errors import Conflict, NotFound
from servicekit.jobs import Job, JobContext, JobHandler, submit
from servicekit.peers import PeerUnavailable
from servicekit.runtime import Runtime
from services.coupon.service import channels
from services.coupon.service.claims import ClaimDesk, ClaimRefused, ClaimRequest
from services.coupon.service.segments import SegmentMembers
from services.coupon.store.batches import BatchState

JOB_KIND = "coupon.targeted_issue"
TAGGING_PATIENCE = timedelta(minutes=5)
CHANNEL = "targeted"


def reference(issue_id: str, customer_id: str) -> str:
    return f"targeted:{issue_id}:{customer_id}"


@dataclass
class Tally:
    """Where the job stands: the cursor after the last page done, and what it gave."""

    cursor: str | None = None
    members: int = 0
    issued: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    @classmethod
    def resumed(cls, checkpoint: Any) -> Tally:
        if not checkpoint:
            return cls()
        return cls(
            cursor=checkpoint["cursor"],
            members=checkpoint["members"],
            issued=checkpoint["issued"],
            refused=Counter(checkpoint["refused"]),
        )

    def as_checkpoint(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "members": self.members,
            "issued": self.issued,
            "refused": dict(self.refused),
        }

    def result(self) -> dict[str, Any]:
        return {"members": self.members, "issued": self.issued, "refused": dict(self.refused)}


async def start(
    runtime: Runtime,
    tenant: str,
    batch_id: str,
    segment_id: str,
    snapshot_id: str | None,
    by: str,
) -> Job:
    """Check the batch and the segment now (so a mistake is answered, not a failed job),
    then submit the job."""
    batch = await channels.desk(runtime).batches.get(tenant, batch_id)  # as of now, uncached
    if batch is None:
        raise NotFound(f"no batch {batch_id}", code="batch_not_found")
    if batch.state != BatchState.ACTIVE:
        raise Conflict(
            "the batch is not open for issuing (campaign not running)", code="batch_not_active"
        )
    await channels.segment_members(runtime).page(tenant, segment_id, snapshot_id, None, 1)
    params = {"batch_id": batch_id, "segment_id": segment_id, "snapshot_id": snapshot_id}
    return await submit(runtime, tenant, JOB_KIND, params=params, created_by=by)


async def run(ctx: JobContext) -> dict[str, Any]:
    """The job: a claim round's worth of members at a time, from the checkpoint until the
    last page or a cancel; the next members are read while these are issued."""
    assert ctx.runtime is not None
    runtime = ctx.runtime
    settings = channels.settings_of(runtime)
    members = channels.segment_members(runtime)
    params = ctx.params

    async def read(cursor: str | None) -> tuple[list[str], str | None]:
        return await _read_members(
            members, ctx.tenant, params["segment_id"], params["snapshot_id"], cursor,
            settings.targeted_page_size, settings.claim_flush_size,
        )  # fmt: skip

    tally = Tally.resumed(ctx.checkpoint)
    reading = asyncio.ensure_future(read(tally.cursor))
    try:
        while not ctx.cancelled:
            group, cursor = await reading
            if cursor is not None:
                reading = asyncio.ensure_future(read(cursor))
            outcomes = await _issue_page(runtime, ctx, group)
            await _count(ctx, tally, group, outcomes, cursor)
            if cursor is None:
                break
    finally:
        reading.cancel()
    return tally.result()


async def _read_members(
    members: SegmentMembers,
    tenant: str,
    segment_id: str,
    snapshot_id: str | None,
    cursor: str | None,
    page_size: int,
    want: int,
) -> tuple[list[str], str | None]:
    """Pages from `cursor` until `want` members (one claim round) or the last page."""
    found: list[str] = []
    while True:
        page, cursor = await _patiently(
            members.page, tenant, segment_id, snapshot_id, cursor, page_size
        )
        found += page
        if cursor is None or len(found) >= want:
            return found, cursor


async def _count(
    ctx: JobContext, tally: Tally, group: list[str], outcomes: list[str | None], cursor: str | None
) -> None:
    """Tally the group and checkpoint after it: every member before `cursor` is done."""
    issued = sum(1 for o in outcomes if o is None)
    tally.members += len(group)
    tally.issued += issued
    tally.refused.update(o for o in outcomes if o is not None)
    tally.cursor = cursor
    await ctx.progress(
        processed=len(group),
        succeeded=issued,
        failed=len(group) - issued,
        checkpoint=tally.as_checkpoint(),
    )


async def _patiently(
    page: Callable[..., Awaitable[tuple[list[str], str | None]]], *args: Any
) -> tuple[list[str], str | None]:
    """A page, waiting out a tagging outage of up to `TAGGING_PATIENCE` (a failed job
    would leave the rest of the segment to a new issue, under new references)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(PeerUnavailable),
        stop=stop_after_delay(TAGGING_PATIENCE.total_seconds()),
        wait=wait_exponential_jitter(multiplier=0.5, max=15),
        reraise=True,
    ):
        with attempt:
            return await page(*args)
    raise AssertionError("unreachable")


async def _issue_page(runtime: Runtime, ctx: JobContext, page: list[str]) -> list[str | None]:
    """Each member's refusal code, or None when they hold this issue's coupon (made now, or
    by the run a crash interrupted: the same reference answers it)."""
    desk = channels.desk(runtime)
    batch_id = ctx.params["batch_id"]
    return list(
        await asyncio.gather(*(_issue_one(desk, ctx.tenant, batch_id, ctx.job.id, c) for c in page))
    )


async def _issue_one(
    desk: ClaimDesk, tenant: str, batch_id: str, issue_id: str, customer_id: str
) -> str | None:
    batch = await desk.batch(tenant, batch_id)
    request = ClaimRequest(customer_id, CHANNEL, reference(issue_id, customer_id))
    try:
        await desk.issue(tenant, batch, request, check_window=False)
    except ClaimRefused as refused:
        return refused.code
    return None


HANDLERS: dict[str, JobHandler] = {JOB_KIND: run}
