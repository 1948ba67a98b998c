"""Campaign use cases: create (pinning template versions), start (now or when due), run as a
job, and report. The job walks the segment's members page by page from the tagging service,
assigns each customer to a variant or the holdout (a stable hash, so a resumed run assigns
alike), dispatches the page and checkpoints after it; sends are throttled to the campaign's
rate. A run that dies resumes from the last checkpoint, and dedupe by message id keeps the
pages it repeats from sending twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from servicekit.clock import utcnow
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.jobs import JobContext, JobLost, submit
from servicekit.runtime import Runtime
from services.reach.domain import campaigns as rules
from services.reach.domain.campaigns import HOLDOUT, Audience, Campaign, CampaignState, Variant
from services.reach.domain.channels import Channel, Purpose
from services.reach.domain.conversion import GroupFigures, with_rates
from services.reach.domain.messages import Draft, Status, draft_for
from services.reach.service.dispatch import Tally
from services.reach.service.wiring import Reach, reach_of

JOB_KIND = "reach.campaign"
#: Members per page (the most the tagging service gives at once).
PAGE = 200


class NewCampaign(BaseModel):
    name: str
    channel: Channel
    purpose: Purpose = Purpose.MARKETING
    audience: Audience
    variants: list[Variant]
    holdout_percent: float = 0
    rate_per_second: float = 200
    variables: dict[str, str] = {}
    link_url: str | None = None
    send_at: datetime | None = None


async def create(reach: Reach, tenant: str, new: NewCampaign, by: str) -> Campaign:
    variants = [await _pinned(reach, tenant, v, new.channel) for v in new.variants]
    campaign = Campaign(
        tenant=tenant,
        campaign_id=f"cmp_{uuid.uuid4().hex[:16]}",
        **new.model_dump(exclude={"variants", "send_at"}),
        variants=variants,
        send_at=new.send_at or utcnow(),
        created_by=by,
        created_at=utcnow(),
    )
    await reach.campaigns.add_campaign(campaign)
    return campaign


async def _pinned(reach: Reach, tenant: str, variant: Variant, channel: Channel) -> Variant:
    template = await reach.template_service.get(
        tenant, variant.template_id, variant.template_version
    )
    if template.channel is not channel:
        raise InvalidInput(
            f"template {template.template_id} is for {template.channel}, not {channel}",
            field="variants.template_id",
        )
    return variant.model_copy(update={"template_version": template.version})


async def get(reach: Reach, tenant: str, campaign_id: str) -> Campaign:
    campaign = await reach.campaigns.campaign(tenant, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
    return campaign


async def start(runtime: Runtime, campaign: Campaign, by: str) -> Campaign:
    """Submit the campaign's job, once: a second start (or the scheduler racing a manual
    start) finds it running."""
    if campaign.state is not CampaignState.SCHEDULED:
        raise Conflict(f"the campaign is {campaign.state}", code="campaign_not_scheduled")
    job = await submit(
        runtime,
        campaign.tenant,
        JOB_KIND,
        params={"campaign_id": campaign.campaign_id},
        created_by=by,
    )
    if not await reach_of(runtime).campaigns.start(campaign, job.id):
        await reach_of(runtime).jobs.request_cancel(campaign.tenant, job.id)
        raise Conflict("the campaign was started already", code="campaign_not_scheduled")
    return campaign.model_copy(update={"state": CampaignState.RUNNING, "job_id": job.id})


async def run(ctx: JobContext) -> dict[str, Any]:
    """The campaign's job; a campaign whose job fails is marked failed (its job says why)."""
    assert ctx.runtime is not None
    reach = reach_of(ctx.runtime)
    campaign = await get(reach, ctx.tenant, ctx.params["campaign_id"])
    try:
        return await _send_campaign(ctx, reach, campaign)
    except (JobLost, asyncio.CancelledError):
        raise  # another runner (or the next start) carries on
    except Exception:
        await reach.campaigns.finish(ctx.tenant, campaign.campaign_id, CampaignState.FAILED)
        raise


async def _send_campaign(ctx: JobContext, reach: Reach, campaign: Campaign) -> dict[str, Any]:
    """Page by page, in order; the checkpoint after a page is recorded once it is sent.
    (Pages sent concurrently were measured slower: the embedded store serialises them.)"""
    tally = Tally()
    cursor: str | None = ctx.checkpoint
    started, sent_here = time.monotonic(), 0
    while not ctx.cancelled:
        members, cursor = await reach.members.page(
            ctx.tenant, campaign.audience.segment_id, campaign.audience.snapshot_id, cursor, PAGE
        )
        page = await _dispatch_page(reach, campaign, members)
        tally.add(page)
        sent_here += page.sent
        await ctx.progress(
            processed=len(members), succeeded=page.sent, failed=page.failed, checkpoint=cursor
        )
        if cursor is None:
            break
        await _throttle(sent_here, started, campaign.rate_per_second)
    state = CampaignState.CANCELLED if ctx.cancelled else CampaignState.FINISHED
    await reach.campaigns.finish(ctx.tenant, campaign.campaign_id, state)
    return tally.as_dict()


async def _throttle(sent: int, started: float, rate: float) -> None:
    wait = rules.throttle_wait(sent, time.monotonic() - started, rate)
    if wait > 0:
        await asyncio.sleep(wait)


async def _dispatch_page(reach: Reach, campaign: Campaign, members: list[str]) -> Tally:
    now = utcnow()
    drafts: list[Draft] = []
    held: list[dict[str, Any]] = []
    for customer_id in members:
        key = f"campaign:{campaign.campaign_id}:{customer_id}"
        variant = rules.assign(campaign, customer_id)
        draft = _draft(campaign, customer_id, key, variant, now)
        if variant is None:
            held.append(_held_out(draft, now))
        else:
            drafts.append(draft)
    tally = Tally()
    inserted = await reach.messages.insert(held)
    tally.held_out = len(inserted.taken)
    tally.add(await reach.dispatcher.dispatch(campaign.tenant, drafts, now=now))
    return tally


def _draft(
    campaign: Campaign, customer_id: str, key: str, variant: Variant | None, now: datetime
) -> Draft:
    chosen = variant or campaign.variants[0]
    variables = dict(campaign.variables)
    if campaign.link_url:
        variables["link_url"] = campaign.link_url
    return draft_for(
        campaign.tenant,
        key,
        not_before=now,
        customer_id=customer_id,
        channel=campaign.channel,
        purpose=campaign.purpose,
        template_id=chosen.template_id,
        template_version=chosen.template_version,
        variables=variables,
        campaign_id=campaign.campaign_id,
        variant=chosen.variant_id if variant else HOLDOUT,
        mass=True,
    )


def _held_out(draft: Draft, now: datetime) -> dict[str, Any]:
    doc = draft.model_dump(
        mode="python", exclude={"message_id", "not_before", "variables", "coupon_id"}
    )
    return {"_id": draft.message_id, **doc, "status": str(Status.HELD_OUT), "at": now}


class Report(BaseModel):
    campaign_id: str
    state: CampaignState
    groups: list[GroupFigures]


async def report(reach: Reach, tenant: str, campaign_id: str) -> Report:
    campaign = await get(reach, tenant, campaign_id)
    groups = {v.variant_id: GroupFigures(group=v.variant_id) for v in campaign.variants}
    if campaign.holdout_percent:
        groups[HOLDOUT] = GroupFigures(group=HOLDOUT)
    for row in await reach.messages.campaign_figures(tenant, campaign_id):
        group = groups.setdefault(row["_id"]["variant"], GroupFigures(group=row["_id"]["variant"]))
        _count(group, Status(row["_id"]["status"]), row["count"], row["clicked"])
    for row in await reach.campaigns.conversion_figures(tenant, campaign_id):
        group = groups.setdefault(row["_id"], GroupFigures(group=row["_id"]))
        group.conversions, group.gmv = row["count"], row["gmv"]
    return Report(
        campaign_id=campaign_id,
        state=campaign.state,
        groups=with_rates(list(groups.values()), HOLDOUT),
    )


def _count(group: GroupFigures, status: Status, count: int, clicked: int) -> None:
    group.members += count
    group.clicked += clicked
    if status in (Status.SENT, Status.DELIVERED):
        group.sent += count
    if status is Status.DELIVERED:
        group.delivered += count
    if status is Status.FAILED:
        group.failed += count
    if status is Status.SUPPRESSED:
        group.suppressed += count
