"""Campaigns (场景营销, scheduled): a template sent to a segment's members at a time, split
into A/B variants and a holdout group, throttled to a rate. Pure: no I/O."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from services.reach.domain.channels import Channel, Purpose

HOLDOUT = "holdout"
BUCKETS = 10_000


class CampaignState(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Variant(BaseModel):
    variant_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,20}$")
    template_id: str
    template_version: int | None = Field(None, ge=1)
    weight: int = Field(1, ge=1, le=100)


class Audience(BaseModel):
    segment_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")
    #: A frozen build snapshot; None means the live membership when the campaign runs.
    snapshot_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,80}$")


class Campaign(BaseModel):
    tenant: str
    campaign_id: str
    name: str
    channel: Channel
    purpose: Purpose = Purpose.MARKETING
    audience: Audience
    variants: list[Variant] = Field(min_length=1, max_length=10)
    #: Percent of the audience (0-50) that gets nothing, to measure the uplift against.
    holdout_percent: float = Field(0, ge=0, le=50)
    #: Messages a second at most.
    rate_per_second: float = Field(200, gt=0, le=100_000)
    variables: dict[str, str] = Field(default_factory=dict)
    #: The URL the `{{link}}` variable leads to, through a tracked redirect.
    link_url: str | None = Field(None, max_length=500, pattern=r"^https?://")
    send_at: datetime
    state: CampaignState = CampaignState.SCHEDULED
    job_id: str | None = None
    created_by: str
    created_at: datetime

    @model_validator(mode="after")
    def _distinct_variants(self) -> Campaign:
        check_variants(self.variants)
        return self


def check_variants(variants: list[Variant]) -> None:
    ids = [v.variant_id for v in variants]
    if len(set(ids)) != len(ids) or HOLDOUT in ids:
        raise ValueError(f"variant ids must be distinct and not {HOLDOUT!r}")


def bucket(campaign_id: str, customer_id: str) -> int:
    """A stable bucket 0..9999: the same customer lands in the same group on every run, so a
    resumed campaign assigns as the first run did."""
    digest = hashlib.sha256(f"{campaign_id}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(campaign: Campaign, customer_id: str) -> Variant | None:
    """The customer's variant, or None when held out."""
    b = bucket(campaign.campaign_id, customer_id)
    held = int(campaign.holdout_percent * BUCKETS / 100)
    if b < held:
        return None
    total = sum(v.weight for v in campaign.variants)
    point = (b - held) * total / (BUCKETS - held) if held < BUCKETS else 0
    for variant in campaign.variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return campaign.variants[-1]


def throttle_wait(sent: int, elapsed: float, rate_per_second: float) -> float:
    """Seconds to wait before sending more, so that `sent` messages took at least
    `sent / rate` seconds."""
    return max(0.0, sent / rate_per_second - elapsed)
