"""Tag rule routes (自动打标签): rules that put a tag on the customers they hold for and take
it off when they stop holding."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.context import ActorDep, TenantDep
from servicekit.pagination import Page, PageRequestDep, page_of
from servicekit.runtime import RuntimeDep
from services.tagging.domain.rules.ast import rule_to_json
from services.tagging.domain.rules.describe import describe
from services.tagging.domain.tag_rules import Preview, RuleState, TagRule
from services.tagging.service.segment_audience import SegmentAudience
from services.tagging.service.tag_rules import TagRuleDraft, TagRuleService

router = APIRouter(tags=["tag rules"])
RuleId = Annotated[str, Path(pattern=r"^trl_[0-9a-f]{32}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TagId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{1,62}$")]
TagValue = Annotated[str, StringConstraints(max_length=64)] | int | float | None
Priority = Annotated[int, Field(ge=-1000, le=1000)]
#: The rule language's JSON; its shape is checked by the rule language itself, so every
#: problem comes back at once with its path (`rule.children.1.op`).
RuleJson = dict[str, Any]


async def _service(runtime: RuntimeDep) -> TagRuleService:
    return TagRuleService(runtime.uow)


TagRulesDep = Annotated[TagRuleService, Depends(_service)]


class NewTagRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    tag_id: TagId
    #: For an enum or number tag, the value the rule assigns; none for a flag tag.
    value: TagValue = None
    rule: RuleJson
    priority: Priority = 0
    state: RuleState = RuleState.ACTIVE


class TagRuleChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    tag_id: TagId | None = None
    value: TagValue = None
    rule: RuleJson | None = None
    priority: Priority | None = None


class TagRuleView(BaseModel):
    rule_id: str
    name: str
    tag_id: str
    value: str | int | float | None
    rule: dict[str, Any]
    description: str
    state: RuleState
    priority: int
    time_based: bool
    version: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    @classmethod
    def of(cls, rule: TagRule) -> TagRuleView:
        return cls(
            **rule.model_dump(exclude={"rule", "tenant"}),
            rule=rule_to_json(rule.rule),
            description=describe(rule.rule),
        )


@router.post("/tag-rules", status_code=status.HTTP_201_CREATED)
async def create_tag_rule(
    body: NewTagRule, tenant: TenantDep, actor: ActorDep, rules: TagRulesDep
) -> TagRuleView:
    """Create a tag rule. The rule is validated against the tenant's fields (custom fields as
    seen in customer events; an unseen `custom.<key>` is text), tags and other tag rules
    (no cycles); every problem is listed with its path. Customers it already holds for are
    tagged by the next sweep."""
    draft = TagRuleDraft(**body.model_dump())
    return TagRuleView.of(await rules.create(tenant, draft, by=actor.id))


@router.get("/tag-rules")
async def list_tag_rules(
    tenant: TenantDep, rules: TagRulesDep, page: PageRequestDep
) -> Page[TagRuleView]:
    after = page.after_value("rule_id") if page.after else None
    found = await rules.page(tenant, after=after, limit=page.limit + 1)
    views = [TagRuleView.of(r) for r in found]
    return page_of(views, page.limit, lambda r: {"rule_id": r.rule_id})


@router.get("/tag-rules/{rule_id}")
async def get_tag_rule(rule_id: RuleId, tenant: TenantDep, rules: TagRulesDep) -> TagRuleView:
    return TagRuleView.of(await rules.get(tenant, rule_id))


@router.patch("/tag-rules/{rule_id}")
async def change_tag_rule(
    rule_id: RuleId, body: TagRuleChanges, tenant: TenantDep, actor: ActorDep, rules: TagRulesDep
) -> TagRuleView:
    """Change what is sent; the rule is validated again as a whole."""
    # An explicit null clears the value; for any other field it means "unchanged".
    sent = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in sent.items() if v is not None or k == "value"}
    return TagRuleView.of(await rules.update(tenant, rule_id, changes, by=actor.id))


@router.delete("/tag-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tag_rule(rule_id: RuleId, tenant: TenantDep, rules: TagRulesDep) -> Response:
    """Delete the rule; the tags it gave stay on the customers."""
    await rules.delete(tenant, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tag-rules/{rule_id}/pause")
async def pause_tag_rule(
    rule_id: RuleId, tenant: TenantDep, actor: ActorDep, rules: TagRulesDep
) -> TagRuleView:
    """Stop evaluating the rule; the tags it gave stay as they are until it resumes."""
    return TagRuleView.of(await rules.set_state(tenant, rule_id, RuleState.PAUSED, by=actor.id))


@router.post("/tag-rules/{rule_id}/resume")
async def resume_tag_rule(
    rule_id: RuleId, tenant: TenantDep, actor: ActorDep, rules: TagRulesDep
) -> TagRuleView:
    return TagRuleView.of(await rules.set_state(tenant, rule_id, RuleState.ACTIVE, by=actor.id))


@router.post("/tag-rules/{rule_id}/preview")
async def preview_tag_rule(
    rule_id: RuleId, tenant: TenantDep, rules: TagRulesDep, runtime: RuntimeDep
) -> Preview:
    """How many of the tenant's customers the rule holds for now, and up to 20 of them,
    answered by the in-memory audience engine."""
    rule = await rules.get(tenant, rule_id)
    found = await SegmentAudience(runtime).estimate(tenant, rule.rule)
    return Preview(matching=found.count, scanned=found.customers, sample=found.sample)
