"""Campaigns to segments (scheduled, A/B variants, holdout) with their report, and triggered
rules."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from servicekit.clock import utcnow
from servicekit.context import ActorDep, TenantDep
from servicekit.errors import InvalidInput, NotFound
from servicekit.runtime import RuntimeDep
from services.reach.api.deps import CampaignId, ReachDep, RuleId
from services.reach.domain.campaigns import Audience, Campaign, Variant, check_variants
from services.reach.domain.channels import Channel, Purpose
from services.reach.domain.rules import Condition, Rule, Trigger
from services.reach.service import campaigns
from services.reach.service.campaigns import NewCampaign, Report

router = APIRouter(tags=["campaigns"])
Variables = dict[str, str]


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    channel: Channel
    purpose: Purpose = Purpose.MARKETING
    audience: Audience
    variants: list[Variant] = Field(min_length=1, max_length=10)
    holdout_percent: float = Field(0, ge=0, le=50)
    rate_per_second: float = Field(200, gt=0, le=100_000)
    variables: dict[str, str] = Field(default_factory=dict, max_length=20)
    link_url: str | None = Field(None, max_length=500, pattern=r"^https?://[^\s]+$")
    #: When to send; now when absent. A scheduler starts it when due.
    send_at: datetime | None = None

    @model_validator(mode="after")
    def _distinct_variants(self) -> CampaignRequest:
        check_variants(self.variants)
        return self


@router.post("/campaigns", status_code=status.HTTP_201_CREATED)
async def create_campaign(
    body: CampaignRequest, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> Campaign:
    """A campaign sending a template (per variant, pinned to its current version) to a
    segment's members — a frozen snapshot or the live membership — at `send_at`, throttled to
    `rate_per_second`, with `holdout_percent` of the audience held out."""
    if body.send_at is not None and body.send_at.tzinfo is None:
        raise InvalidInput("send_at needs a time zone offset", field="send_at")
    return await campaigns.create(reach, tenant, NewCampaign(**body.model_dump()), actor.id)


@router.get("/campaigns")
async def list_campaigns(tenant: TenantDep, reach: ReachDep) -> list[Campaign]:
    return await reach.campaigns.campaigns(tenant)


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: CampaignId, tenant: TenantDep, reach: ReachDep) -> Campaign:
    return await campaigns.get(reach, tenant, campaign_id)


@router.post("/campaigns/{campaign_id}/start", status_code=status.HTTP_202_ACCEPTED)
async def start_campaign(
    campaign_id: CampaignId,
    tenant: TenantDep,
    actor: ActorDep,
    reach: ReachDep,
    runtime: RuntimeDep,
    response: Response,
) -> Campaign:
    """Start now rather than at `send_at`: a job (poll `Location`) with progress."""
    started = await campaigns.start(
        runtime, await campaigns.get(reach, tenant, campaign_id), actor.id
    )
    response.headers["Location"] = f"/jobs/{started.job_id}"
    return started


@router.get("/campaigns/{campaign_id}/report")
async def campaign_report(campaign_id: CampaignId, tenant: TenantDep, reach: ReachDep) -> Report:
    """Per variant and holdout: members, sends, deliveries, failures, suppressions, clicks,
    conversions and GMV (分), conversion rate and uplift against the holdout (points)."""
    return await campaigns.report(reach, tenant, campaign_id)


class RuleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    trigger: Trigger
    conditions: list[Condition] = Field(default_factory=list, max_length=10)
    delay_seconds: int = Field(0, ge=0, le=90 * 86_400)
    before_expiry_seconds: int | None = Field(None, ge=0, le=90 * 86_400)
    channel: Channel
    purpose: Purpose = Purpose.MARKETING
    template_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    template_version: int | None = Field(None, ge=1)


class RuleSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


@router.post("/rules", status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: RuleRequest, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> Rule:
    """A triggered rule: on each event of `trigger` whose facts meet the conditions, send the
    template (pinned to its current version) after `delay_seconds` (or `before_expiry_seconds`
    ahead of a coupon's expiry)."""
    template = await reach.template_service.get(tenant, body.template_id, body.template_version)
    if template.channel is not body.channel:
        raise InvalidInput(
            f"template {template.template_id} is for {template.channel}", field="template_id"
        )
    try:
        rule = Rule(
            tenant=tenant,
            rule_id=f"rul_{uuid.uuid4().hex[:16]}",
            **body.model_dump(exclude={"template_version"}),
            template_version=template.version,
            created_by=actor.id,
            created_at=utcnow(),
        )
    except ValueError as exc:
        raise InvalidInput(str(exc).splitlines()[-1], field="before_expiry_seconds") from None
    await reach.campaigns.add_rule(rule)
    return rule


@router.get("/rules")
async def list_rules(tenant: TenantDep, reach: ReachDep) -> list[Rule]:
    return await reach.campaigns.rules(tenant)


@router.patch("/rules/{rule_id}")
async def switch_rule(
    rule_id: RuleId, body: RuleSwitch, tenant: TenantDep, reach: ReachDep
) -> Rule:
    if not await reach.campaigns.set_active(tenant, rule_id, body.active):
        raise NotFound(f"no rule {rule_id}", code="rule_not_found")
    rule = await reach.campaigns.rule(tenant, rule_id)
    assert rule is not None
    return rule
