"""Campaigns (活动): ask for budget, are approved or rejected, run, and end.

draft → pending_approval → approved | rejected; approved → running → ended. Each step
records who and when. Approval reserves the maximum subsidy of its batches."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from servicekit.errors import Conflict
from services.coupon.domain.batches import ID_PATTERN, BatchSpec


class CampaignState(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    RUNNING = "running"
    ENDED = "ended"


class Step(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    START = "start"
    END = "end"


#: Which state each step leaves from and goes to.
TRANSITIONS: dict[Step, tuple[frozenset[CampaignState], CampaignState]] = {
    Step.SUBMIT: (frozenset({CampaignState.DRAFT}), CampaignState.PENDING_APPROVAL),
    Step.APPROVE: (frozenset({CampaignState.PENDING_APPROVAL}), CampaignState.APPROVED),
    Step.REJECT: (frozenset({CampaignState.PENDING_APPROVAL}), CampaignState.REJECTED),
    Step.START: (frozenset({CampaignState.APPROVED}), CampaignState.RUNNING),
    Step.END: (frozenset({CampaignState.APPROVED, CampaignState.RUNNING}), CampaignState.ENDED),
}


class CampaignDraft(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    budget_id: str = Field(pattern=ID_PATTERN)
    description: str = Field("", max_length=1000)
    batches: list[BatchSpec] = Field(min_length=1, max_length=20)


class HistoryStep(BaseModel):
    step: Step
    state: CampaignState
    by: str
    at: datetime
    note: str | None = None


class Campaign(BaseModel):
    id: str
    name: str
    budget_id: str
    description: str
    batches: list[BatchSpec]
    state: CampaignState
    max_subsidy: int
    #: Held from the budget now (approval sets it; use and ending draw it down).
    reserved: int = 0
    consumed: int = 0
    released: int = 0
    batch_ids: dict[str, str] = Field(default_factory=dict)
    history: list[HistoryStep]
    created_at: datetime


def drafted(campaign_id: str, draft: CampaignDraft, *, by: str, now: datetime) -> Campaign:
    return Campaign(
        id=campaign_id,
        name=draft.name,
        budget_id=draft.budget_id,
        description=draft.description,
        batches=draft.batches,
        state=CampaignState.DRAFT,
        max_subsidy=sum(spec.max_subsidy() for spec in draft.batches),
        history=[],
        created_at=now,
    )


def step(
    campaign: Campaign, step: Step, *, by: str, now: datetime, note: str | None = None
) -> Campaign:
    """The campaign after `step`, or Conflict naming why the step is not possible now."""
    sources, target = TRANSITIONS[step]
    if campaign.state not in sources:
        raise Conflict(
            f"a campaign that is {campaign.state} cannot {step}",
            code="campaign_state",
            state=str(campaign.state),
        )
    record = HistoryStep(step=step, state=target, by=by, at=now, note=note)
    return campaign.model_copy(update={"state": target, "history": [*campaign.history, record]})
