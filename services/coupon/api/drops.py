"""On-site drops (站内投放, 天降红包): drop rules for ops, and the check a client makes when
a customer logs in or opens a page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from servicekit.clock import utcnow
from servicekit.context import ActorDep, TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.coupon.api.claims import CouponView
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.drops import (
    OCCASION_PATTERN,
    PAGE_PATTERN,
    DropRule,
    DropRuleDraft,
    Trigger,
)
from services.coupon.service import channels
from services.coupon.service.drops import Check, Drops

router = APIRouter(tags=["on-site drops"])
RuleId = Annotated[str, Path(pattern=r"^drp_[0-9a-f]{16}$")]


async def _drops(runtime: RuntimeDep) -> Drops:
    return channels.drops(runtime)


DropsDep = Annotated[Drops, Depends(_drops)]


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(pattern=ID_PATTERN)
    trigger: Trigger
    page: str | None = Field(None, pattern=PAGE_PATTERN)
    #: The client's id of this login or page view (a session or page-view id): a retried
    #: check with the same occasion answers the same drop and never draws again.
    occasion: str | None = Field(None, pattern=OCCASION_PATTERN)

    @model_validator(mode="after")
    def _page_for_page_opens(self) -> CheckBody:
        if self.page is not None and self.trigger != Trigger.PAGE_OPEN:
            raise ValueError("page is given only for a page_open trigger")
        return self


class DropView(BaseModel):
    rule_id: str
    coupon: CouponView
    #: False when this repeats an earlier check's drop (the same coupon, not another one).
    new: bool


class CheckAnswer(BaseModel):
    #: What dropped into the wallet on this check: usually nothing.
    dropped: list[DropView]


@router.post("/drop-rules", status_code=status.HTTP_201_CREATED)
async def create_rule(
    body: DropRuleDraft, tenant: TenantDep, actor: ActorDep, drops: DropsDep
) -> DropRule:
    """A drop rule: trigger (login, or page_open with an optional page key), the batch to
    drop, audience (anyone, new_customers, returning_customers), probability in percent,
    caps per customer per day and overall, active window. 422 `batch_not_found` when the
    batch does not exist."""
    return await drops.create(tenant, body, actor.id)


@router.get("/drop-rules")
async def list_rules(tenant: TenantDep, drops: DropsDep, page: PageRequestDep) -> Page[DropRule]:
    items, cursor = await drops.page(tenant, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/drop-rules/{rule_id}")
async def get_rule(rule_id: RuleId, tenant: TenantDep, drops: DropsDep) -> DropRule:
    return await drops.get(tenant, rule_id)


@router.put("/drop-rules/{rule_id}")
async def replace_rule(
    rule_id: RuleId, body: DropRuleDraft, tenant: TenantDep, actor: ActorDep, drops: DropsDep
) -> DropRule:
    """Replace the rule whole (set `enabled` false to pause it). Drops made stay counted
    against the caps."""
    return await drops.replace(tenant, rule_id, body, actor.id)


@router.delete("/drop-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: RuleId, tenant: TenantDep, drops: DropsDep) -> Response:
    await drops.delete(tenant, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/drops/check")
async def check(body: CheckBody, tenant: TenantDep, drops: DropsDep) -> CheckAnswer:
    """Called when a customer logs in or opens a page: each live rule matching the trigger
    (and page), the customer's audience and caps draws once; a win is issued straight to
    the wallet as a grant (channel `onsite_drop`): the batch's stock and per-customer
    limits apply, its claim window does not (the rule's active window does), so a batch
    meant only for drops keeps its claim window over and cannot be claimed directly.
    Answers what dropped, usually nothing."""
    found = await drops.check(
        tenant, Check(body.customer_id, body.trigger, body.page, body.occasion)
    )
    now = utcnow()
    return CheckAnswer(
        dropped=[
            DropView(rule_id=d.rule_id, coupon=CouponView.of(d.coupon, now), new=d.new)
            for d in found
        ]
    )
