"""Campaign routes (营销管理): draft, submit, approve or reject, start, end."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from servicekit.context import Actor, ActorDep, TenantDep
from servicekit.errors import Forbidden
from servicekit.pagination import Page, PageRequestDep
from services.coupon.api.alerts import SignalsDep
from services.coupon.api.deps import CampaignsDep, Id
from services.coupon.domain.campaigns import Campaign, CampaignDraft, Step
from services.coupon.store.batches import Batch

router = APIRouter(tags=["campaigns"])
#: Who may approve or reject a campaign's request for budget.
APPROVERS = ("budget_approver", "admin")


class StepNote(BaseModel):
    note: str | None = Field(None, max_length=500)


@router.post("/campaigns", status_code=status.HTTP_201_CREATED)
async def draft_campaign(
    body: CampaignDraft, tenant: TenantDep, actor: ActorDep, campaigns: CampaignsDep
) -> Campaign:
    """A campaign draft with its batches. Each batch is checked now (claim window at most
    90 days, validity, limits, and the margin check: 422 `margin_check_failed` with the
    reason). `max_subsidy` is what approval will reserve: stock times the most a coupon can give."""
    return await campaigns.draft(tenant, body, actor)


@router.get("/campaigns")
async def list_campaigns(
    tenant: TenantDep, campaigns: CampaignsDep, page: PageRequestDep
) -> Page[Campaign]:
    items, cursor = await campaigns.page(tenant, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: Id, tenant: TenantDep, campaigns: CampaignsDep) -> Campaign:
    return await campaigns.get(tenant, campaign_id)


@router.get("/campaigns/{campaign_id}/batches")
async def campaign_batches(
    campaign_id: Id, tenant: TenantDep, campaigns: CampaignsDep
) -> list[Batch]:
    return await campaigns.batches_of(tenant, campaign_id)


def _step_route(step: Step, doc: str) -> None:
    async def take(
        campaign_id: Id,
        tenant: TenantDep,
        actor: ActorDep,
        campaigns: CampaignsDep,
        signals: SignalsDep,
        body: StepNote | None = None,
    ) -> Campaign:
        _may(actor, step)
        note = body.note if body else None
        taken = await campaigns.take_step(tenant, campaign_id, step, actor, note)
        signals.budget(tenant, taken.budget_id)  # its budget's alert is evaluated at once
        return taken

    take.__doc__ = doc
    router.post(f"/campaigns/{{campaign_id}}/{step}", name=f"{step}_campaign")(take)


def _may(actor: Actor, step: Step) -> None:
    if step in (Step.APPROVE, Step.REJECT) and not actor.has_role(*APPROVERS):
        raise Forbidden(f"only {' or '.join(APPROVERS)} may {step} a campaign", code="not_approver")


_step_route(Step.SUBMIT, "Ask for approval (draft → pending_approval).")
_step_route(
    Step.APPROVE,
    "Approve (roles budget_approver or admin): reserves the maximum subsidy from the budget "
    "and makes the batches; 409 `budget_exceeded` when the budget's remaining is less.",
)
_step_route(Step.REJECT, "Reject (roles budget_approver or admin).")
_step_route(Step.START, "Start: the batches open for claiming.")
_step_route(
    Step.END,
    "End: claiming stops; the reservation not held for coupons still usable is released.",
)
